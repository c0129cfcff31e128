"""UI settings: unsafe or incomplete configurations are refused with the setting named."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from fluxup.errors import ConfigError
from fluxup.ui.settings import AuthMode, UiSettings

KEY = Fernet.generate_key().decode()


def test_no_auth_only_on_loopback() -> None:
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.5"):
        UiSettings.from_env({"FLUXUP_UI_ENABLED": "true", "FLUXUP_UI_AUTH": "none",
                             "FLUXUP_UI_HOST": host})
    for host in ("0.0.0.0", "10.0.0.1", "example.com", "::"):
        with pytest.raises(ConfigError, match="only allowed on a loopback address"):
            UiSettings.from_env({"FLUXUP_UI_ENABLED": "true", "FLUXUP_UI_AUTH": "none",
                                 "FLUXUP_UI_HOST": host})


def test_oidc_needs_issuer_client_and_keys() -> None:
    with pytest.raises(ConfigError, match="FLUXUP_UI_OIDC_ISSUER, FLUXUP_UI_OIDC_CLIENT_ID"):
        UiSettings.from_env({"FLUXUP_UI_ENABLED": "true"})
    with pytest.raises(ConfigError, match="FLUXUP_UI_SESSION_KEYS is required"):
        UiSettings.from_env({"FLUXUP_UI_ENABLED": "true", "FLUXUP_UI_OIDC_ISSUER": "https://i",
                             "FLUXUP_UI_OIDC_CLIENT_ID": "c"})
    ok = UiSettings.from_env({"FLUXUP_UI_ENABLED": "true", "FLUXUP_UI_OIDC_ISSUER": "https://i",
                              "FLUXUP_UI_OIDC_CLIENT_ID": "c", "FLUXUP_UI_SESSION_KEYS": KEY,
                              "FLUXUP_UI_PUBLIC_URL": "https://fluxup.example"})
    assert ok.auth is AuthMode.OIDC
    assert ok.cookie_secure is True
    assert ok.redirect_uri == "https://fluxup.example/auth/callback"


@pytest.mark.parametrize(("env", "problem"), [
    ({"FLUXUP_UI_SESSION_KEYS": "short"}, "32 bytes"),
    ({"FLUXUP_UI_AUTH": "basic"}, "must be oidc or none"),
    ({"FLUXUP_UI_PORT": "99999"}, "not a TCP port"),
])
def test_bad_values(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        UiSettings.from_env(env)


def test_disabled_by_default_and_plain_http_cookies_not_secure() -> None:
    settings = UiSettings.from_env({})
    assert settings.enabled is False
    assert settings.cookie_secure is False


def test_list_cache_seconds() -> None:
    assert UiSettings.from_env({}).list_cache_seconds == 5.0
    assert UiSettings.from_env({"FLUXUP_UI_LIST_CACHE_SECONDS": "0"}).list_cache_seconds == 0
    assert UiSettings.from_env({"FLUXUP_UI_LIST_CACHE_SECONDS": "2.5"}).list_cache_seconds == 2.5
    for bad in ("-1", "301", "soon", "nan"):
        with pytest.raises(ConfigError, match=r"FLUXUP_UI_LIST_CACHE_SECONDS=.* from 0"):
            UiSettings.from_env({"FLUXUP_UI_LIST_CACHE_SECONDS": bad})
