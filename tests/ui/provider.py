"""A minimal OpenID provider for the UI's unit tests, served through httpx MockTransport.

A fake: unit tests run without the sandbox, where no identity provider exists. It
publishes a discovery document and a JWKS and signs ID tokens with a key made per test
run; it answers the token endpoint only for the code and PKCE verifier it was given.
The browser tests in ``tests/integration`` log in through the sandbox's real provider.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any
from urllib.parse import parse_qs

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

ISSUER = "https://idp.test"
CLIENT_ID = "fluxup"


class Provider:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.codes: dict[str, tuple[str, dict[str, Any]]] = {}
        self.jwks_fetches = 0

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "1", "iat": now, "exp": now + 300,
                "preferred_username": "alice", "groups": ["team-a"], **claims}
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, body, self.key)

    def issue_code(self, code: str, challenge: str, **claims: Any) -> None:
        self.codes[code] = (challenge, claims)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks"})
        if request.url.path == "/jwks":
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        if request.url.path == "/token":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            entry = self.codes.pop(form.get("code", ""), None)
            if entry is None:
                return httpx.Response(400, json={"error": "invalid_grant"})
            challenge, claims = entry
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != challenge:
                return httpx.Response(400, json={"error": "invalid_grant"})
            return httpx.Response(200, json={"access_token": "a", "token_type": "Bearer",
                                              "id_token": self.token(**claims)})
        return httpx.Response(404, content=json.dumps({}).encode())

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
