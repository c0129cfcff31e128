"""Build the Renovate configuration FluxUp runs Renovate with (a JSON config file).

Called by the scan runner (:mod:`fluxup.adapters.renovate`) before each run. The config is
FluxUp's own and complete: Renovate reads it through ``RENOVATE_CONFIG_FILE`` so it never
loads (and executes) a ``config.js`` from the scanned repository. It runs Renovate in
``dryRun=lookup`` with ``reportType=file`` and ``exitCodeForErrors`` (an aborted
repository exits non-zero instead of 0), enables only the managers FluxUp maps (``flux``,
``helm-values``, ``kubernetes``) with file patterns covering the repository's YAML,
reports every candidate (separate patch, minor and major updates, each minor and major
line), turns off what is not an app version (GitHub-sourced deps, Kubernetes apiVersion
bumps) and adds host rules: credentials for private registries (from Secrets),
``insecureRegistry`` for plain-HTTP registries, ``allowInternal`` for in-cluster hosts and
``enabled: false`` for hosts that must not be contacted.

The result holds credentials: the caller writes it to a private file, never logs it.
Pure; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fluxup.errors import ConfigError

__all__ = ["HostRule", "ScanPaths", "build_renovate_config"]

_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")
_HOST_TYPES = frozenset({"docker", "helm"})

#: File patterns per manager (regexes, Renovate's ``/.../`` form). They are added to the
#: managers' defaults (flux: gotk-components.yaml; helm-values: values.yaml).
FILE_PATTERNS: dict[str, list[str]] = {
    "flux": [r"/\.ya?ml$/"],
    "helm-values": [r"/(^|/)values\.ya?ml$/"],
    "kubernetes": [r"/\.ya?ml$/"],
}


@dataclass(frozen=True)
class HostRule:
    """Access to one registry host. ``username``/``password`` or ``token`` authenticate
    (from a Secret); ``insecure`` means plain HTTP; ``internal`` allows a private address."""

    match_host: str
    host_type: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    insecure: bool = False
    internal: bool = False

    def __post_init__(self) -> None:
        if not _HOST.match(self.match_host):
            raise ConfigError(f"registry host {self.match_host!r} is not HOST or HOST:PORT")
        if self.host_type is not None and self.host_type not in _HOST_TYPES:
            raise ConfigError(f"host type {self.host_type!r} is not docker or helm")
        if self.password is not None and self.token is not None:
            raise ConfigError(f"registry host {self.match_host}: give a password or a token, "
                              "not both")


@dataclass(frozen=True)
class ScanPaths:
    """Directories and files of one run (all private to it)."""

    base_dir: str
    cache_dir: str
    report_path: str


def _match(rule: HostRule) -> str:
    """Renovate's ``matchHost`` for credentials: a bare host, or a URL when a port is given
    (Renovate rewrites ``host:port`` to ``https://host:port`` with a migration warning)."""
    if ":" not in rule.match_host:
        return rule.match_host
    return f"{'http' if rule.insecure else 'https'}://{rule.match_host}"


def _host_rules(rules: Sequence[HostRule], disabled: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rule in rules:
        bare = rule.match_host.split(":", 1)[0]  # these two apply to every port of the host
        if rule.insecure:
            out.append({"matchHost": bare, "hostType": "docker", "insecureRegistry": True})
        if rule.internal:
            out.append({"matchHost": bare, "allowInternal": True})
        if rule.username or rule.password or rule.token:
            auth: dict[str, Any] = {"matchHost": _match(rule)}
            if rule.host_type:
                auth["hostType"] = rule.host_type
            if rule.username:
                auth["username"] = rule.username
            if rule.password:
                auth["password"] = rule.password
            if rule.token:
                auth["token"] = rule.token
            out.append(auth)
    for host in disabled:
        if not _HOST.match(host):
            raise ConfigError(f"disabled host {host!r} is not HOST or HOST:PORT")
        out.append({"matchHost": host if ":" not in host else f"https://{host}",
                    "enabled": False})
    return out


def build_renovate_config(
    paths: ScanPaths,
    host_rules: Sequence[HostRule] = (),
    disabled_hosts: Sequence[str] = (),
) -> dict[str, Any]:
    """The complete Renovate configuration of one lookup run (JSON-serializable)."""
    config: dict[str, Any] = {
        "platform": "local",
        "dryRun": "lookup",
        "onboarding": False,
        "requireConfig": "optional",
        "baseDir": paths.base_dir,
        "cacheDir": paths.cache_dir,
        "reportType": "file",
        "reportPath": paths.report_path,
        "exitCodeForErrors": True,
        "githubTokenWarn": False,
        "enabledManagers": sorted(FILE_PATTERNS),
        "separateMinorPatch": True,
        "separateMultipleMajor": True,
        "separateMultipleMinor": True,
        "packageRules": [
            {"matchDatasources": ["github-releases", "github-tags", "kubernetes-api"],
             "enabled": False},
        ],
        "hostRules": _host_rules(host_rules, disabled_hosts),
    }
    for manager, patterns in FILE_PATTERNS.items():
        config[manager] = {"managerFilePatterns": list(patterns)}
    return config
