"""The UI app's front door, without a cluster: login, sessions, CSRF, 401/redirects,
cookie flags, security headers, the OpenAPI document and no-auth mode's loopback rule.

Every request here is refused (or answered) before any Kubernetes call; the apiserver
address points at a closed port, so a request that slipped through would answer 502,
not the status asserted. RBAC behaviour is tested on the sandbox
(``tests/integration/test_ui_sandbox.py``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet
from kubernetes_asyncio.client import Configuration

from fluxup.adapters.events import EventRecorder
from fluxup.adapters.impersonation import Impersonator
from fluxup.adapters.kube import KubeApi
from fluxup.errors import ConfigError
from fluxup.ui.app import build_app
from fluxup.ui.keys import CODEC, OIDC
from fluxup.ui.oidc import OIDCClient
from fluxup.ui.openapi import build_openapi
from fluxup.ui.session import Session
from fluxup.ui.settings import AuthMode, UiSettings
from tests.ui.provider import CLIENT_ID, ISSUER, Provider

PUBLIC = "https://fluxup.test"
COOKIE = "__Host-fluxup_session"


def _impersonator() -> Impersonator:
    conf = Configuration(host="https://127.0.0.1:9")  # closed port: nothing may get there
    return Impersonator(conf)


def make_app(settings: UiSettings, provider: Provider | None = None) -> web.Application:
    impersonator = _impersonator()
    audit = EventRecorder(KubeApi(None))  # type: ignore[arg-type]  # never reached here
    app = build_app(settings, impersonator, audit)
    if provider is not None:
        app[OIDC] = OIDCClient(settings, transport=provider.transport())
    app.on_cleanup.append(lambda _: impersonator.aclose())
    return app


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
async def client(provider: Provider) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    settings = UiSettings(enabled=True, oidc_issuer=ISSUER, oidc_client_id=CLIENT_ID,
                          session_keys=(Fernet.generate_key(),), public_url=PUBLIC)
    async with TestClient(TestServer(make_app(settings, provider))) as tc:
        yield tc


def session_cookie(tc: TestClient[web.Request, web.Application], csrf: str = "tok") -> str:
    session = Session("oidc:alice", ("oidc:team-a",), csrf, time.time() + 600)
    return f"{COOKIE}={tc.app[CODEC].seal_session(session)}"


async def test_pages_redirect_and_api_answers_401(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/apps/a/b?x=1", allow_redirects=False)
    assert resp.status == 302
    location = urlsplit(resp.headers["Location"])
    assert location.path == "/auth/login"
    assert parse_qs(location.query)["next"] == ["/apps/a/b?x=1"]
    resp = await client.get("/api/apps", allow_redirects=False)
    assert resp.status == 401
    assert (await resp.json())["error"] == "unauthenticated"
    tampered = session_cookie(client)[:-6] + "AAAAAA"
    resp = await client.get("/api/apps", headers={"Cookie": tampered})
    assert resp.status == 401


async def test_login_sets_hardened_cookies(client: TestClient, provider: Provider) -> None:  # type: ignore[type-arg]
    resp = await client.get("/auth/login?next=/snapshots", allow_redirects=False)
    assert resp.status == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}
    login = SimpleCookie(resp.headers["Set-Cookie"])["fluxup_login"]
    assert login["httponly"]
    assert login["secure"]
    assert login["samesite"] == "Lax"
    provider.issue_code("code-1", query["code_challenge"], nonce=query["nonce"])
    resp = await client.get(f"/auth/callback?code=code-1&state={query['state']}",
                            headers={"Cookie": f"fluxup_login={login.value}"},
                            allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/snapshots"
    cookies = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie"):
        cookies.load(header)
    session = cookies[COOKIE]
    assert session["httponly"]
    assert session["secure"]
    assert session["samesite"] == "Lax"
    assert session["path"] == "/"
    opened = client.app[CODEC].open_session(session.value)
    assert opened is not None
    assert opened.user == "oidc:alice"
    assert opened.groups == ("oidc:team-a",)


async def test_callback_refuses_bad_state_and_missing_login(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/auth/login", allow_redirects=False)
    login = SimpleCookie(resp.headers["Set-Cookie"])["fluxup_login"]
    resp = await client.get("/auth/callback?code=x&state=forged",
                            headers={"Cookie": f"fluxup_login={login.value}"})
    assert resp.status == 401
    assert "state does not match" in await resp.text()
    resp = await client.get("/auth/callback?code=x&state=y")
    assert resp.status == 400
    assert COOKIE not in resp.headers.get("Set-Cookie", "")


async def test_open_redirects_are_not_followed(client: TestClient) -> None:  # type: ignore[type-arg]
    from fluxup.ui.routes_auth import safe_next

    for target in ("https://evil.test/", "//evil.test", "/\\evil.test", "", None):
        assert safe_next(target) == "/"
    assert safe_next("/apps/a/b?x=1") == "/apps/a/b?x=1"


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 403),
    ({"X-CSRF-Token": "forged"}, 403),
    ({"X-CSRF-Token": "tok", "Origin": "https://evil.test"}, 403),
])
async def test_csrf_refused_before_anything_happens(
        client: TestClient, headers: dict[str, str], status: int) -> None:  # type: ignore[type-arg]
    resp = await client.post("/api/apps/apps/web/upgrade", json={"version": "1.0.1"},
                             headers={"Cookie": session_cookie(client), **headers})
    assert resp.status == status
    body = await resp.json()
    assert body["error"] == "csrf"
    resp = await client.post("/apps/apps/web/preview", data={"csrf_token": "forged"},
                             headers={"Cookie": session_cookie(client)})
    assert resp.status == 403
    resp = await client.delete("/api/snapshots/apps/s1",
                               headers={"Cookie": session_cookie(client)})
    assert resp.status == 403


async def test_valid_csrf_reaches_kubernetes(client: TestClient) -> None:  # type: ignore[type-arg]
    """The control for the test above: with the right token the request goes on (and
    fails only because no apiserver listens here)."""
    resp = await client.post("/api/apps/apps/web/upgrade", json={"version": "1.0.1"},
                             headers={"Cookie": session_cookie(client), "X-CSRF-Token": "tok",
                                      "Origin": PUBLIC})
    assert resp.status == 502
    assert "apiserver unreachable" in (await resp.json())["message"]


async def test_bad_input_is_400_before_kubernetes(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.post("/api/apps/apps/web/upgrade", json={"version": "1; rm"},
                             headers={"Cookie": session_cookie(client), "X-CSRF-Token": "tok"})
    assert resp.status == 400
    assert "not a valid chart version" in (await resp.json())["message"]


async def test_bearer_tokens(client: TestClient, provider: Provider) -> None:  # type: ignore[type-arg]
    expired = provider.token(exp=int(time.time()) - 600)
    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {expired}"})
    assert resp.status == 401
    assert "expired" in (await resp.json())["message"]
    good = provider.token()
    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {good}"})
    assert resp.status == 200
    assert (await resp.json())["user"] == "oidc:alice"
    head, body, sig = good.split(".")
    resp = await client.get("/api/me",
                            headers={"Authorization": f"Bearer {head}.{body}x.{sig}"})
    assert resp.status == 401


async def test_security_headers_and_static(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/static/htmx-2.0.11.min.js")
    assert resp.status == 200
    assert "htmx" in await resp.text()
    resp = await client.get("/api/me", headers={"Cookie": session_cookie(client)})
    assert resp.status == 200
    assert (await resp.json())["csrfToken"] == "tok"
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"


async def test_logout_needs_csrf(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.post("/auth/logout", data={"csrf_token": "forged"},
                             headers={"Cookie": session_cookie(client)}, allow_redirects=False)
    assert resp.status == 403
    resp = await client.post("/auth/logout", data={"csrf_token": "tok"},
                             headers={"Cookie": session_cookie(client)}, allow_redirects=False)
    assert resp.status == 303
    assert SimpleCookie(resp.headers["Set-Cookie"])[COOKIE].value == ""


async def test_openapi_describes_every_api_route(client: TestClient) -> None:  # type: ignore[type-arg]
    registered = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if path.startswith("/api/") and route.method != "HEAD":
            registered.add((route.method.lower(), path.replace("{kind:upgrades|rollbacks}",
                                                               "{kind}")))
    documented = {(m, p) for p, ops in build_openapi()["paths"].items() for m in ops}
    assert registered == documented


async def test_no_auth_mode_only_on_loopback() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        make_app(UiSettings(enabled=True, auth=AuthMode.NONE, host="0.0.0.0"))
    app = make_app(UiSettings(enabled=True, auth=AuthMode.NONE, host="127.0.0.1"))
    async with TestClient(TestServer(app)) as tc:
        resp = await tc.get("/api/me")
        assert resp.status == 200
        me = await resp.json()
        assert me["user"] == "fluxup-demo"
        assert me["via"] == "demo"
        assert COOKIE.removeprefix("__Host-") in resp.headers["Set-Cookie"]
        resp = await tc.post("/api/apps/a/b/upgrade", json={})
        assert resp.status == 403  # demo mode still checks CSRF
