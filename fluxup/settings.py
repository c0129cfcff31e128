"""Typed operator settings, loaded once at start-up and passed explicitly.

``Settings.from_env()`` is called by the ``fluxup operator`` entry point only; nothing
reads the environment at import time. The result travels in kopf's ``memo`` and the
aiohttp app (``AppKey``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fluxup.api.constants import OPERATOR_USERNAME
from fluxup.errors import ConfigError

__all__ = ["Settings"]


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean; use true or false")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None
    if not 0 < number < math.inf:  # also refuses nan
        raise ConfigError(f"{name} must be positive and finite, got {value}")
    return number


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, default)
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


def _address(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).strip()
    if not value:
        return ""
    _, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{name}={value!r} is not host:port (e.g. 0.0.0.0:9090), or empty "
                          "to switch it off")
    return value


def _interval(env: Mapping[str, str], name: str) -> float:
    """Seconds between scheduled scans; ``0`` (the default) turns the schedule off."""
    value = env.get(name)
    if value is None or value.strip() == "0":
        return 0.0
    number = _float(env, name, 0.0)
    if number < 60:
        raise ConfigError(f"{name}={value!r}: scans need at least 60 s apart (or 0 for none)")
    return number


def _hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of ``HOST`` or ``HOST:PORT``."""
    value = env.get(name, "")
    hosts = tuple(h.strip() for h in value.split(",") if h.strip())
    for host in hosts:
        if "/" in host or " " in host or "@" in host:
            raise ConfigError(f"{name}: {host!r} is not HOST or HOST:PORT")
    return hosts


def _report_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The report intake's settings; the endpoint needs its certificate and key."""
    address = _address(env, "FLUXUP_REPORT_ADDRESS", "")
    cert, key = env.get("FLUXUP_REPORT_CERT_FILE"), env.get("FLUXUP_REPORT_KEY_FILE")
    if address and not (cert and key):
        raise ConfigError("FLUXUP_REPORT_ADDRESS needs FLUXUP_REPORT_CERT_FILE and "
                          "FLUXUP_REPORT_KEY_FILE (the endpoint only speaks HTTPS)")
    interval = env.get("FLUXUP_REPORT_CONFIGMAP_INTERVAL_SECONDS", "30").strip()
    return {
        "report_address": address,
        "report_cert_file": Path(cert) if cert else None,
        "report_key_file": Path(key) if key else None,
        "report_audiences": tuple(a.strip() for a in env.get("FLUXUP_REPORT_AUDIENCES", "")
                                  .split(",") if a.strip()),
        "report_configmap_interval_seconds": 0.0 if interval == "0" else _float(
            env, "FLUXUP_REPORT_CONFIGMAP_INTERVAL_SECONDS", 30.0),
    }


@dataclass(frozen=True)
class Settings:
    """Everything the operator is configured with.

    ``operator_username`` is the Kubernetes user the operator acts as; the webhook lets
    only this user write ``fluxup.dev/approved``/``released``. ``work_dir`` holds Git
    checkouts. ``field_manager`` is used for every write to Flux objects.
    """

    namespace: str = "fluxup-system"
    operator_username: str = OPERATOR_USERNAME
    field_manager: str = "fluxup-operator"
    work_dir: Path = Path("/var/lib/fluxup")
    kubeconfig: Path | None = None
    active_poll_seconds: float = 1.0
    idle_resync_seconds: float = 60.0
    allow_cross_namespace_refs: bool = False
    git_author_name: str = "FluxUp"
    git_author_email: str = "fluxup@localhost"
    #: ``host:port`` of ``/metrics`` (its own port; the manifests use 0.0.0.0:9090);
    #: empty: no metrics server
    metrics_address: str = ""
    #: file with Apprise URLs, one per line (mounted from a Secret); None: no Apprise
    notify_urls_file: Path | None = None
    #: notification-controller's events address; None: no Flux events
    flux_events_url: str | None = None
    #: the UI's external address, for links in notifications
    ui_url: str | None = None
    #: how FluxUp reaches Git: ``git`` (clone and push, any forge) or the REST API of
    #: ``gitea``, ``github`` or ``gitlab``; ``git_api_url`` overrides the derived API address
    git_backend: str = "git"
    git_api_url: str | None = None
    notify_attempts: int = 4
    notify_backoff_seconds: float = 2.0
    #: Renovate (see docs/renovate.md): Node 24 binary and Renovate's ``dist/renovate.js``
    #: (the container image ships both here), seconds between scheduled scans (0: only on
    #: demand), the time limit of one run, plain-HTTP registries, in-cluster hosts Renovate
    #: may reach, and hosts it must never contact (``HOST`` or ``HOST:PORT``).
    renovate_node: Path = Path("/usr/local/bin/node")
    renovate_js: Path = Path("/opt/renovate/node_modules/renovate/dist/renovate.js")
    renovate_interval_seconds: float = 0.0
    renovate_timeout_seconds: float = 600.0
    renovate_insecure_registries: tuple[str, ...] = ()
    renovate_internal_hosts: tuple[str, ...] = ()
    renovate_disabled_hosts: tuple[str, ...] = ()
    #: Secrets in ``namespace`` with registry credentials for Renovate, read by name:
    #: keys ``host``, ``username`` + ``password`` or ``token``, optional ``hostType``.
    renovate_secrets: tuple[str, ...] = ()
    #: Reports from a Renovate that runs elsewhere (docs/renovate.md): ``host:port`` of the
    #: HTTPS endpoint (empty: off) with its certificate and key files (reloaded when they
    #: change), the audiences a sender's token must be bound to (empty: the API server's
    #: default), and how often the labelled ConfigMaps are read (0: never).
    report_address: str = ""
    report_cert_file: Path | None = None
    report_key_file: Path | None = None
    report_audiences: tuple[str, ...] = ()
    report_configmap_interval_seconds: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        kubeconfig = env.get("FLUXUP_KUBECONFIG") or env.get("KUBECONFIG")
        return cls(
            namespace=env.get("FLUXUP_NAMESPACE", cls.namespace),
            operator_username=env.get("FLUXUP_OPERATOR_USERNAME", cls.operator_username),
            field_manager=env.get("FLUXUP_FIELD_MANAGER", cls.field_manager),
            work_dir=Path(env.get("FLUXUP_WORK_DIR", str(cls.work_dir))),
            kubeconfig=Path(kubeconfig) if kubeconfig else None,
            active_poll_seconds=_float(env, "FLUXUP_ACTIVE_POLL_SECONDS",
                                       cls.active_poll_seconds),
            idle_resync_seconds=_float(env, "FLUXUP_IDLE_RESYNC_SECONDS",
                                       cls.idle_resync_seconds),
            allow_cross_namespace_refs=_flag(env, "FLUXUP_ALLOW_CROSS_NAMESPACE_REFS", False),
            git_author_name=env.get("FLUXUP_GIT_AUTHOR_NAME", cls.git_author_name),
            git_author_email=env.get("FLUXUP_GIT_AUTHOR_EMAIL", cls.git_author_email),
            git_backend=_choice(env, "FLUXUP_GIT_BACKEND", cls.git_backend,
                                ("git", "gitea", "github", "gitlab")),
            git_api_url=env.get("FLUXUP_GIT_API_URL") or None,
            metrics_address=_address(env, "FLUXUP_METRICS_ADDRESS", cls.metrics_address),
            notify_urls_file=Path(env["FLUXUP_NOTIFY_URLS_FILE"])
            if env.get("FLUXUP_NOTIFY_URLS_FILE") else None,
            flux_events_url=env.get("FLUXUP_FLUX_EVENTS_URL") or None,
            ui_url=env.get("FLUXUP_UI_URL") or None,
            notify_attempts=int(_float(env, "FLUXUP_NOTIFY_ATTEMPTS", cls.notify_attempts)),
            notify_backoff_seconds=_float(env, "FLUXUP_NOTIFY_BACKOFF_SECONDS",
                                          cls.notify_backoff_seconds),
            renovate_node=Path(env.get("FLUXUP_RENOVATE_NODE", str(cls.renovate_node))),
            renovate_js=Path(env.get("FLUXUP_RENOVATE_JS", str(cls.renovate_js))),
            renovate_interval_seconds=_interval(env, "FLUXUP_RENOVATE_INTERVAL_SECONDS"),
            renovate_timeout_seconds=_float(env, "FLUXUP_RENOVATE_TIMEOUT_SECONDS",
                                            cls.renovate_timeout_seconds),
            renovate_insecure_registries=_hosts(env, "FLUXUP_RENOVATE_INSECURE_REGISTRIES"),
            renovate_internal_hosts=_hosts(env, "FLUXUP_RENOVATE_INTERNAL_HOSTS"),
            renovate_disabled_hosts=_hosts(env, "FLUXUP_RENOVATE_DISABLED_HOSTS"),
            renovate_secrets=tuple(n.strip() for n in env.get("FLUXUP_RENOVATE_SECRETS", "")
                                   .split(",") if n.strip()),
            **_report_settings(env),
        )

    def report_host_port(self) -> tuple[str, int] | None:
        """``(host, port)`` of the report endpoint, or None when it is switched off."""
        if not self.report_address:
            return None
        host, _, port = self.report_address.rpartition(":")
        return host or "0.0.0.0", int(port)  # noqa: S104

    def metrics_host_port(self) -> tuple[str, int] | None:
        """``(host, port)`` of the metrics server, or None when it is switched off."""
        if not self.metrics_address:
            return None
        host, _, port = self.metrics_address.rpartition(":")
        return host or "0.0.0.0", int(port)  # noqa: S104
