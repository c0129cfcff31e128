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


@dataclass(frozen=True)
class Settings:
    """Everything the operator is configured with.

    ``operator_username`` is the Kubernetes user the operator acts as; the webhook lets
    only this user write ``fluxup.dev/approved``/``released``. ``work_dir`` holds Git
    checkouts. ``field_manager`` is used for every write to Flux objects.
    """

    namespace: str = "fluxup-system"
    operator_username: str = "system:serviceaccount:fluxup-system:fluxup-operator"
    field_manager: str = "fluxup-operator"
    work_dir: Path = Path("/var/lib/fluxup")
    kubeconfig: Path | None = None
    active_poll_seconds: float = 1.0
    idle_resync_seconds: float = 60.0
    allow_cross_namespace_refs: bool = False
    git_author_name: str = "FluxUp"
    git_author_email: str = "fluxup@localhost"

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
        )
