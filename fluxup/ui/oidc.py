"""OpenID Connect login: authorization code with PKCE, ID tokens checked by joserfc.

Used by the login routes (:mod:`fluxup.ui.routes_auth`) and by API clients that send an
ID token as ``Authorization: Bearer``. Nothing here checks a token by hand: Authlib
makes the state, nonce and S256 code challenge; joserfc (the JOSE library Authlib is
built on) verifies signature, issuer, audience, expiry and nonce against the provider's
published keys; the code exchange is one form POST (RFC 6749 §4.1.3 with RFC 7636's
verifier). The provider's keys are fetched again
when a token names a key id not seen yet (key rotation).

The identity FluxUp impersonates is the configured username claim and groups claim,
each with a prefix (``oidc:``), exactly like the apiserver's own ``--oidc-*`` flags, so
RBAC bindings written for the cluster's OIDC users work for the UI unchanged.
"""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fluxup.errors import FluxUpError
from fluxup.ui.settings import UiSettings

__all__ = ["LoginError", "OIDCClient", "PendingLogin", "Principal"]

_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"]


class LoginError(FluxUpError):
    """A login or token was refused; the message says why, never the token."""


@dataclass(frozen=True)
class Principal:
    """Who a token names, as Kubernetes will see them."""

    user: str
    groups: tuple[str, ...]
    display_name: str
    expires: float


@dataclass(frozen=True)
class PendingLogin:
    """What the browser carries (sealed) between the redirect and the callback."""

    state: str
    nonce: str
    verifier: str
    next_url: str

    def to_json(self) -> dict[str, str]:
        return {"s": self.state, "n": self.nonce, "v": self.verifier, "x": self.next_url}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PendingLogin | None:
        if not data:
            return None
        try:
            return cls(str(data["s"]), str(data["n"]), str(data["v"]), str(data["x"]))
        except KeyError:
            return None


class OIDCClient:
    """One provider: discovery document, keys, login and token verification."""

    def __init__(self, settings: UiSettings,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        """``transport`` is the test seam (httpx ``MockTransport``); None: the network."""
        if not settings.oidc_issuer or not settings.oidc_client_id:
            raise LoginError("OIDC issuer and client id are required")
        self._settings = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self._verify: ssl.SSLContext | bool = True
        if settings.oidc_ca_file:
            self._verify = ssl.create_default_context(cafile=settings.oidc_ca_file)
        self._transport = transport
        self._meta: dict[str, Any] = {}
        self._keys: KeySet | None = None
        self._keys_fetched = 0.0

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(verify=self._verify, timeout=10.0, transport=self._transport)

    async def metadata(self) -> dict[str, Any]:
        if not self._meta:
            async with self._http() as http:
                resp = await http.get(self.issuer + "/.well-known/openid-configuration")
            if resp.status_code != 200:
                raise LoginError(f"OIDC discovery at {self.issuer} answered HTTP "
                                 f"{resp.status_code}")
            meta = resp.json()
            if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
                raise LoginError(f"OIDC discovery names issuer {meta.get('issuer')!r}, "
                                 f"not the configured {self.issuer!r}")
            self._meta = meta
        return self._meta

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or (refresh and time.monotonic() - self._keys_fetched > 10):
            meta = await self.metadata()
            async with self._http() as http:
                resp = await http.get(meta["jwks_uri"])
            if resp.status_code != 200:
                raise LoginError(f"OIDC keys at {meta['jwks_uri']} answered HTTP "
                                 f"{resp.status_code}")
            self._keys = KeySet.import_key_set(resp.json())
            self._keys_fetched = time.monotonic()
        return self._keys

    async def begin(self, next_url: str) -> tuple[str, PendingLogin]:
        """The provider's authorization URL, and the state to keep until the callback."""
        meta = await self.metadata()
        pending = PendingLogin(generate_token(32), generate_token(32), generate_token(64),
                               next_url)
        query = {
            "response_type": "code", "client_id": self.client_id,
            "redirect_uri": self._settings.redirect_uri, "scope": self._settings.oidc_scopes,
            "state": pending.state, "nonce": pending.nonce,
            "code_challenge": create_s256_code_challenge(pending.verifier),
            "code_challenge_method": "S256",
        }
        return f"{meta['authorization_endpoint']}?{urlencode(query)}", pending

    async def finish(self, pending: PendingLogin, state: str, code: str) -> Principal:
        """Exchange the code (with the PKCE verifier) and verify the ID token."""
        if not secrets.compare_digest(pending.state, state):
            raise LoginError("login state does not match; start the login again")
        meta = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self._settings.redirect_uri, "client_id": self.client_id,
                "code_verifier": pending.verifier}
        secret = self._settings.oidc_client_secret
        auth: httpx.Auth | httpx._client.UseClientDefault = (
            httpx.BasicAuth(self.client_id, secret) if secret else httpx.USE_CLIENT_DEFAULT)
        try:
            async with self._http() as http:
                resp = await http.post(meta["token_endpoint"], data=form, auth=auth,
                                       headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise LoginError(f"the provider's token endpoint is unreachable "
                             f"({type(exc).__name__})") from None
        if resp.status_code != 200:
            raise LoginError(f"the provider refused the login code (HTTP {resp.status_code})")
        try:
            token = resp.json()
        except ValueError:
            raise LoginError("the provider's token response is not JSON") from None
        id_token = token.get("id_token")
        if not id_token:
            raise LoginError("the provider returned no ID token; request the openid scope")
        return await self.verify(str(id_token), nonce=pending.nonce)

    async def verify(self, id_token: str, nonce: str | None = None) -> Principal:
        """Check an ID token completely and map it to a Kubernetes identity."""
        try:
            try:
                decoded = jwt.decode(id_token, await self._key_set(), algorithms=_ALGORITHMS)
            except JoseError as exc:
                if "key" not in str(exc).lower():
                    raise
                decoded = jwt.decode(id_token, await self._key_set(refresh=True),
                                     algorithms=_ALGORITHMS)
            options: dict[str, Any] = {
                "iss": {"essential": True, "values": [self.issuer, self.issuer + "/"]},
                "aud": {"essential": True, "value": self.client_id},
                "exp": {"essential": True}, "sub": {"essential": True},
            }
            if nonce is not None:
                options["nonce"] = {"essential": True, "value": nonce}
            jwt.JWTClaimsRegistry(leeway=30, **options).validate(decoded.claims)
        except JoseError as exc:
            raise LoginError(f"ID token refused: {exc.description or exc.error}") from None
        except ValueError:
            raise LoginError("ID token refused: malformed") from None
        return self.principal(decoded.claims)

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        settings = self._settings
        name = claims.get(settings.username_claim)
        if not isinstance(name, str) or not name:
            raise LoginError(f"ID token has no {settings.username_claim!r} claim to name the "
                             "user; set FLUXUP_UI_USERNAME_CLAIM")
        raw_groups = claims.get(settings.groups_claim) or []
        if isinstance(raw_groups, str):
            raw_groups = [raw_groups]
        groups = tuple(settings.group_prefix + str(g) for g in raw_groups if g)
        return Principal(settings.user_prefix + name, groups,
                         str(claims.get("name") or name), float(claims.get("exp", 0)))
