"""The UI's OIDC login against a real provider: Dex, built from its Go module.

No cluster: Dex runs as a sandbox process of a bare sandbox directory (its PKI only) and
the UI app is served by aiohttp's test server on the redirect URI Dex knows. The browser's
part is played by httpx (Dex's own login form is posted); the browser tests in
``tests/integration/test_ui_browser.py`` do the same in Chromium on the full sandbox.
"""

from __future__ import annotations

import html
import re
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import bcrypt
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet

from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.dex import Dex, DexClient, DexUser, build_dex_config, start_dex
from fluxup.sandbox.pki import ensure_pki, new_token
from fluxup.sandbox.processes import free_port
from fluxup.ui.keys import CODEC, OIDC
from fluxup.ui.oidc import LoginError, PendingLogin
from fluxup.ui.routes_auth import LOGIN_COOKIE
from fluxup.ui.settings import UiSettings
from tests.ui.test_app import make_app

USER = DexUser("ada", "correct horse battery", ("team-a", "fluxup-approvers"))


def test_config_hashes_passwords_and_serves_https_only(tmp_path: Path) -> None:
    client = DexClient("ui", "s3cret", ("http://127.0.0.1:1/auth/callback",))
    config = build_dex_config("https://127.0.0.1:1/dex", "127.0.0.1:1", tmp_path / "c",
                              tmp_path / "k", client, [USER])
    (entry,) = config["staticPasswords"]
    assert USER.password not in str(config)
    assert bcrypt.checkpw(USER.password.encode(), entry["hash"].encode())
    assert entry["hash"].startswith("$2b$10$")  # Dex refuses a cost below 10
    assert entry["groups"] == ["team-a", "fluxup-approvers"]
    assert entry["email"] == "ada@fluxup.test"
    assert config["staticClients"][0]["redirectURIs"] == list(client.redirect_uris)
    assert config["storage"] == {"type": "memory"}
    assert "http" not in config["web"]  # HTTPS only


def test_config_without_a_key_pair_serves_plain_http_for_the_loopback_demo(
        tmp_path: Path) -> None:
    client = DexClient("ui", "s3cret", ("http://127.0.0.1:1/auth/callback",))
    config = build_dex_config("http://127.0.0.1:2/dex", "127.0.0.1:2", None, None, client,
                              [USER])
    assert config["web"] == {"http": "127.0.0.1:2"}
    with pytest.raises(ValueError, match="both a certificate and a key"):
        build_dex_config("https://127.0.0.1:2/dex", "127.0.0.1:2", tmp_path / "c", None,
                         client, [USER])


@pytest.fixture(scope="module")
def ui_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def dex(tmp_path_factory: pytest.TempPathFactory, ui_port: int) -> Iterator[Dex]:
    directory = tmp_path_factory.mktemp("dex-sandbox")
    sb = Sandbox(directory, new_token())
    ensure_pki(sb.pki.dir)
    running = start_dex(sb, directory / "dex", [f"http://127.0.0.1:{ui_port}/auth/callback"],
                        [USER])
    yield running
    running.stop()


@pytest.fixture
async def ui(dex: Dex, ui_port: int) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    settings = UiSettings(
        enabled=True, public_url=f"http://127.0.0.1:{ui_port}", oidc_issuer=dex.issuer,
        oidc_client_id=dex.client.client_id, oidc_client_secret=dex.client.secret,
        oidc_ca_file=str(dex.ca_file), session_keys=(Fernet.generate_key(),))
    server = TestServer(make_app(settings), host="127.0.0.1", port=ui_port)
    async with TestClient(server) as tc:
        yield tc


async def _dex_login(dex: Dex, auth_url: str, password: str) -> tuple[int, str]:
    """Play the browser at Dex: open the authorization URL, post its password form.
    Returns (status, final URL or page text): the UI's callback URL once Dex is done."""
    verify = ssl.create_default_context(cafile=str(dex.ca_file))
    async with httpx.AsyncClient(verify=verify, follow_redirects=True, timeout=10) as http:
        page = await http.get(auth_url)
        assert page.status_code == 200, page.text
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action, page.text
        url = httpx.URL(str(page.url)).join(html.unescape(action.group(1)))
        resp = await http.post(url, data={"login": USER.email, "password": password},
                               follow_redirects=False)
        while resp.status_code in (302, 303) and resp.headers["location"].startswith(
                dex.issuer):
            resp = await http.get(resp.headers["location"], follow_redirects=False)
        if resp.status_code in (302, 303):
            return resp.status_code, resp.headers["location"]
        return resp.status_code, resp.text


@pytest.mark.sandbox  # needs the Dex binary (built on demand), not a cluster
async def test_login_through_dex_sets_a_session_with_groups(
        dex: Dex, ui: TestClient[web.Request, web.Application]) -> None:
    start = await ui.get("/auth/login?next=/settings", allow_redirects=False)
    assert start.status == 302
    auth_url = start.headers["Location"]
    assert auth_url.startswith(dex.issuer + "/auth?")
    assert "code_challenge_method=S256" in auth_url
    status, body = await _dex_login(dex, auth_url, "wrong " + USER.password)
    assert status == 401  # Dex shows its form again, with its error
    assert "Invalid Email Address and password" in body
    status, callback = await _dex_login(dex, auth_url, USER.password)
    assert status == 303, callback
    assert callback.startswith(f"{ui.server.scheme}://127.0.0.1:{ui.server.port}/auth/callback?")
    done = await ui.get(urlsplit(callback).path + "?" + urlsplit(callback).query,
                        allow_redirects=False)
    assert done.status == 303, await done.text()
    assert done.headers["Location"] == "/settings"
    me = await (await ui.get("/api/me")).json()
    assert me["user"] == "oidc:ada"
    assert me["groups"] == ["oidc:team-a", "oidc:fluxup-approvers"]
    assert me["csrfToken"]


@pytest.mark.sandbox
async def test_dex_refuses_a_code_without_its_pkce_verifier(
        dex: Dex, ui: TestClient[web.Request, web.Application]) -> None:
    start = await ui.get("/auth/login", allow_redirects=False)
    sealed = start.cookies[LOGIN_COOKIE].value
    pending = PendingLogin.from_json(ui.app[CODEC].open(sealed, ttl=600))
    assert pending is not None
    status, callback = await _dex_login(dex, start.headers["Location"], USER.password)
    assert status == 303
    query = dict(p.split("=", 1) for p in urlsplit(callback).query.split("&"))
    forged = PendingLogin(pending.state, pending.nonce, "x" * 64, pending.next_url)
    with pytest.raises(LoginError, match="refused the login code"):
        await ui.app[OIDC].finish(forged, query["state"], query["code"])
