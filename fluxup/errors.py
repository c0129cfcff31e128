"""FluxUp's exception hierarchy.

Adapters translate library exceptions into these; only kopf handlers translate them
into ``kopf.TemporaryError``/``kopf.PermanentError``. Every message says what happened
and what to do about it, and never contains secrets.
"""

from __future__ import annotations

__all__ = ["ConfigError", "FluxUpError", "SandboxError"]


class FluxUpError(Exception):
    """Base of every error FluxUp raises on purpose."""


class ConfigError(FluxUpError):
    """Settings or user input are invalid; nothing was changed."""


class SandboxError(FluxUpError):
    """The local sandbox cluster could not be built, started or reached."""
