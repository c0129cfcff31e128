"""Sessions in signed and encrypted cookies, and the CSRF token that lives in them.

Used by :mod:`fluxup.ui.auth` and the login routes. A session is a small JSON document
(the Kubernetes user and groups, a CSRF token, an expiry) sealed with Fernet from
``cryptography`` (AES-128-CBC + HMAC-SHA256, with a timestamp): the browser can neither
read nor change it, and a tampered or expired cookie decodes to nothing. No tokens from
the identity provider are stored. ``MultiFernet`` lets operators rotate keys.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["Session", "SessionCodec", "csrf_matches", "new_csrf_token"]


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison; a missing or empty token never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True)
class Session:
    """A logged-in person: the Kubernetes identity the UI impersonates for them."""

    user: str
    groups: tuple[str, ...]
    csrf: str = field(default_factory=new_csrf_token)
    expires: float = 0.0
    display_name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"u": self.user, "g": list(self.groups), "c": self.csrf, "e": self.expires,
                "n": self.display_name}

    @classmethod
    def from_json(cls, data: Any) -> Session | None:
        if not isinstance(data, dict):
            return None
        try:
            user, groups, csrf, expires = data["u"], data["g"], data["c"], float(data["e"])
        except (KeyError, TypeError, ValueError):
            return None
        if not (isinstance(user, str) and user and isinstance(csrf, str) and csrf
                and isinstance(groups, list) and all(isinstance(g, str) for g in groups)):
            return None
        return cls(user, tuple(groups), csrf, expires, str(data.get("n") or user))


class SessionCodec:
    """Seals and opens cookie values; ``keys[0]`` seals, every key opens."""

    def __init__(self, keys: Sequence[bytes], ttl_seconds: int) -> None:
        if not keys:
            raise ValueError("at least one session key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self.ttl = ttl_seconds

    def seal(self, payload: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode()

    def open(self, value: str | None, ttl: int | None = None) -> dict[str, Any] | None:
        """The payload, or ``None`` when the cookie is missing, forged, tampered or old."""
        if not value:
            return None
        try:
            raw = self._fernet.decrypt(value.encode(), ttl=ttl or self.ttl)
        except (InvalidToken, ValueError):
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def seal_session(self, session: Session) -> str:
        return self.seal(session.to_json())

    def open_session(self, value: str | None, now: float | None = None) -> Session | None:
        session = Session.from_json(self.open(value))
        if session is None:
            return None
        if session.expires <= (time.time() if now is None else now):
            return None
        return session
