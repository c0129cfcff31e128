"""Typed settings of the web UI, loaded once at start-up (``FLUXUP_UI_*``).

Called by the operator entry point; passed to :func:`fluxup.ui.app.build_app` through
an ``AppKey``. Refuses unsafe combinations with a :class:`~fluxup.errors.ConfigError`
naming the setting: no-auth mode on anything but a loopback address, OIDC without its
issuer/client, a session key that is not 32 random bytes. Nothing is read at import time.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from fluxup.errors import ConfigError

__all__ = ["AuthMode", "UiSettings", "check_loopback"]


class AuthMode(StrEnum):
    """``oidc``: log in with the configured provider. ``none``: local demo only."""

    OIDC = "oidc"
    NONE = "none"


def check_loopback(host: str) -> None:
    """Raise unless ``host`` is a loopback address (no-auth mode listens only there)."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ConfigError(
        f"FLUXUP_UI_AUTH=none serves the UI without login and is only allowed on a loopback "
        f"address, not {host!r}; set FLUXUP_UI_HOST=127.0.0.1 or configure OIDC")


@dataclass(frozen=True)
class UiSettings:
    """Everything the UI is configured with.

    ``session_keys``: Fernet keys (urlsafe base64 of 32 bytes); the first encrypts new
    sessions, all decrypt (rotation). ``public_url`` is where browsers reach the UI; the
    OIDC redirect URI is ``{public_url}/auth/callback``. ``secure_cookies`` defaults to
    whether ``public_url`` is https. ``demo_user`` acts in no-auth mode.
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    auth: AuthMode = AuthMode.OIDC
    session_keys: tuple[bytes, ...] = ()
    session_ttl_seconds: int = 8 * 3600
    secure_cookies: bool | None = None
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_scopes: str = "openid profile email groups"
    oidc_ca_file: str | None = None
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    user_prefix: str = "oidc:"
    group_prefix: str = "oidc:"
    demo_user: str = "fluxup-demo"
    demo_groups: tuple[str, ...] = ("fluxup:approvers",)
    #: How long one person's inbox lists are reused (per identity; 0: never).
    list_cache_seconds: float = 5.0

    @property
    def cookie_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.public_url.startswith("https://")

    @property
    def redirect_uri(self) -> str:
        return self.public_url.rstrip("/") + "/auth/callback"

    def check(self) -> None:
        """Raise :class:`ConfigError` for any unsafe or incomplete combination."""
        if self.auth is AuthMode.NONE:
            check_loopback(self.host)
            return
        missing = [name for name, value in (("FLUXUP_UI_OIDC_ISSUER", self.oidc_issuer),
                                            ("FLUXUP_UI_OIDC_CLIENT_ID", self.oidc_client_id))
                   if not value]
        if missing:
            raise ConfigError(f"OIDC login needs {', '.join(missing)} (or FLUXUP_UI_AUTH=none "
                              "on a loopback address for the local demo)")
        if not self.session_keys:
            raise ConfigError("FLUXUP_UI_SESSION_KEYS is required with OIDC: one or more "
                              "comma-separated Fernet keys (32 random bytes, urlsafe base64)")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> UiSettings:
        env = os.environ if env is None else env
        keys = []
        for text in filter(None, (k.strip() for k in env.get("FLUXUP_UI_SESSION_KEYS",
                                                             "").split(","))):
            try:
                raw = base64.urlsafe_b64decode(text.encode())
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise ConfigError("FLUXUP_UI_SESSION_KEYS: each key must be 32 bytes in "
                                  "urlsafe base64 (python -c 'from cryptography.fernet import "
                                  "Fernet; print(Fernet.generate_key().decode())')")
            keys.append(text.encode())
        try:
            auth = AuthMode(env.get("FLUXUP_UI_AUTH", "oidc"))
        except ValueError:
            raise ConfigError("FLUXUP_UI_AUTH must be oidc or none") from None
        port_text = env.get("FLUXUP_UI_PORT", str(cls.port))
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"FLUXUP_UI_PORT={port_text!r} is not a TCP port")
        secure = env.get("FLUXUP_UI_SECURE_COOKIES")
        cache_text = env.get("FLUXUP_UI_LIST_CACHE_SECONDS", str(cls.list_cache_seconds))
        try:
            cache_seconds = float(cache_text)
        except ValueError:
            cache_seconds = -1.0
        if not 0 <= cache_seconds <= 300:
            raise ConfigError(f"FLUXUP_UI_LIST_CACHE_SECONDS={cache_text!r}: give seconds from 0 "
                              "(no cache) to 300")
        host = env.get("FLUXUP_UI_HOST", cls.host)
        settings = cls(
            enabled=env.get("FLUXUP_UI_ENABLED", "false").lower() in ("1", "true", "yes"),
            host=host,
            port=int(port_text),
            public_url=env.get("FLUXUP_UI_PUBLIC_URL", f"http://{host}:{port_text}"),
            auth=auth,
            session_keys=tuple(keys),
            oidc_issuer=env.get("FLUXUP_UI_OIDC_ISSUER") or None,
            oidc_client_id=env.get("FLUXUP_UI_OIDC_CLIENT_ID") or None,
            oidc_client_secret=env.get("FLUXUP_UI_OIDC_CLIENT_SECRET") or None,
            oidc_scopes=env.get("FLUXUP_UI_OIDC_SCOPES", cls.oidc_scopes),
            oidc_ca_file=env.get("FLUXUP_UI_OIDC_CA_FILE") or None,
            username_claim=env.get("FLUXUP_UI_USERNAME_CLAIM", cls.username_claim),
            groups_claim=env.get("FLUXUP_UI_GROUPS_CLAIM", cls.groups_claim),
            user_prefix=env.get("FLUXUP_UI_USER_PREFIX", cls.user_prefix),
            group_prefix=env.get("FLUXUP_UI_GROUP_PREFIX", cls.group_prefix),
            secure_cookies=None if secure is None else secure.lower() in ("1", "true", "yes"),
            list_cache_seconds=cache_seconds,
        )
        if settings.enabled:
            settings.check()
        return settings
