"""ID token verification and the code + PKCE exchange, against a test provider.

The provider (``tests/ui/provider.py``) is a fake served through httpx MockTransport, so
these run without the sandbox; every refusal path a real provider cannot easily
produce (expired, wrong audience, forged signature, wrong nonce) is covered here.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from joserfc.jwk import RSAKey

from fluxup.ui.oidc import LoginError, OIDCClient
from fluxup.ui.settings import UiSettings
from tests.ui.provider import CLIENT_ID, ISSUER, Provider


def client(provider: Provider, **overrides: str) -> OIDCClient:
    settings = UiSettings(enabled=True, oidc_issuer=ISSUER, oidc_client_id=CLIENT_ID,
                          session_keys=(Fernet.generate_key(),),
                          public_url="https://fluxup.test", **overrides)  # type: ignore[arg-type]
    return OIDCClient(settings, transport=provider.transport())


async def test_valid_token_maps_to_prefixed_kubernetes_identity() -> None:
    provider = Provider()
    principal = await client(provider).verify(provider.token(name="Alice A."))
    assert principal.user == "oidc:alice"
    assert principal.groups == ("oidc:team-a",)
    assert principal.display_name == "Alice A."


@pytest.mark.parametrize(("claims", "problem"), [
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"nbf": int(time.time()) + 3600}, "not yet valid"),
    ({"aud": "someone-else"}, "aud"),
    ({"iss": "https://evil.test"}, "iss"),
])
async def test_bad_claims_refused(claims: dict[str, object], problem: str) -> None:
    provider = Provider()
    with pytest.raises(LoginError, match=problem):
        await client(provider).verify(provider.token(**claims))


async def test_forged_and_tampered_tokens_refused() -> None:
    provider = Provider()
    oidc = client(provider)
    forger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    real = provider.token()
    provider_key, provider.key = provider.key, forger
    forged = provider.token(preferred_username="admin")
    provider.key = provider_key
    with pytest.raises(LoginError, match="refused"):
        await oidc.verify(forged)
    head, body, sig = real.split(".")
    with pytest.raises(LoginError, match="refused"):
        await oidc.verify(f"{head}.{body[:-4]}AAAA.{sig}")
    with pytest.raises(LoginError, match="refused"):
        await oidc.verify("not.a.jwt")


async def test_missing_username_claim_is_explained() -> None:
    provider = Provider()
    with pytest.raises(LoginError, match="preferred_username"):
        await client(provider).verify(provider.token(preferred_username=None))


async def test_login_with_pkce_and_nonce() -> None:
    provider = Provider()
    oidc = client(provider)
    url, pending = await oidc.begin("/apps/a/b")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{ISSUER}/authorize?")
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == "https://fluxup.test/auth/callback"
    assert query["state"] == pending.state
    assert query["nonce"] == pending.nonce
    provider.issue_code("c1", query["code_challenge"], nonce=pending.nonce)
    principal = await oidc.finish(pending, pending.state, "c1")
    assert principal.user == "oidc:alice"
    # a replayed code, a wrong state, a wrong nonce are refused
    with pytest.raises(LoginError, match="refused the login code"):
        await oidc.finish(pending, pending.state, "c1")
    with pytest.raises(LoginError, match="state does not match"):
        await oidc.finish(pending, "other", "c1")
    provider.issue_code("c2", query["code_challenge"], nonce="another")
    with pytest.raises(LoginError, match="nonce"):
        await oidc.finish(pending, pending.state, "c2")


async def test_keys_refetched_after_rotation() -> None:
    provider = Provider()
    oidc = client(provider)
    await oidc.verify(provider.token())
    provider.key = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    oidc._keys_fetched -= 60  # the last fetch was a while ago
    assert (await oidc.verify(provider.token())).user == "oidc:alice"
    assert provider.jwks_fetches == 2
