"""The "target version exists" lookups against real servers: an OCI registry behind the
token flow and mutual TLS (anonymous and with credentials), an HTTP Helm repository with
Basic auth, and the Secret formats Flux documents. Failures say what to fix and never
carry credentials."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web

from fluxup.adapters.chartsource import (
    SourceAccess,
    build_source_access,
    list_helm_repository_versions,
    list_oci_tags,
    parse_index_versions,
)
from fluxup.errors import ChartSourceError
from fluxup.sandbox.processes import free_port
from tests.adapters.registry_auth import (
    PASSWORD,
    USER,
    LockedRegistry,
    TokenService,
    run_locked_registry,
)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(scope="module")
def realm_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, realm_port: int
             ) -> Iterator[LockedRegistry]:
    yield from run_locked_registry(tmp_path_factory.mktemp("registry"), realm_port)


@pytest.fixture
async def tokens(registry: LockedRegistry, realm_port: int) -> AsyncIterator[TokenService]:
    service = TokenService(registry.pki)
    app = web.Application()
    app.router.add_get("/token", service.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", realm_port).start()
    try:
        yield service
    finally:
        await runner.cleanup()


def _mtls(registry: LockedRegistry, **kwargs: Any) -> SourceAccess:
    pki = registry.pki
    return SourceAccess(ca_pem=pki.ca_pem, cert_pem=pki.client_pem, key_pem=pki.client_key,
                        **kwargs)


async def test_anonymous_token_flow(registry: LockedRegistry, tokens: TokenService) -> None:
    tags = await list_oci_tags(f"oci://127.0.0.1:{registry.port}/public/web", _mtls(registry))
    assert tags == ["2.0.0"]
    assert tokens.requests == [("repository:public/web:pull", None)]


async def test_token_flow_with_the_source_credentials(
    registry: LockedRegistry, tokens: TokenService
) -> None:
    url = f"oci://127.0.0.1:{registry.port}/private/web"
    tags = await list_oci_tags(url, _mtls(registry, username=USER, password=PASSWORD))
    assert sorted(tags) == ["1.0.0", "1.1.0"]
    assert tokens.requests == [("repository:private/web:pull", USER)]
    with pytest.raises(ChartSourceError, match="token service refused anonymous access"):
        await list_oci_tags(url, _mtls(registry))
    with pytest.raises(ChartSourceError, match="refused the secretRef credentials") as info:
        await list_oci_tags(url, _mtls(registry, username=USER, password="wrong"))
    assert "wrong" not in str(info.value)


async def test_tls_needs_the_cert_secret(registry: LockedRegistry, tokens: TokenService) -> None:
    url = f"oci://127.0.0.1:{registry.port}/public/web"
    with pytest.raises(ChartSourceError, match=r"TLS certificate not trusted .*certSecretRef"):
        await list_oci_tags(url)
    with pytest.raises(ChartSourceError, match=r"TLS handshake failed .*check certSecretRef"):
        # the CA alone is not enough: this registry wants a client certificate too
        await list_oci_tags(url, SourceAccess(ca_pem=registry.pki.ca_pem))


async def test_access_from_flux_secrets(registry: LockedRegistry, tokens: TokenService) -> None:
    host = f"127.0.0.1:{registry.port}"
    auth = _b64(json.dumps({"auths": {host: {"auth": _b64(f"{USER}:{PASSWORD}")}}}))
    pki = registry.pki
    access = build_source_access(
        host, {"data": {".dockerconfigjson": auth}},
        {"data": {"ca.crt": _b64(pki.ca_pem), "tls.crt": _b64(pki.client_pem),
                  "tls.key": _b64(pki.client_key)}},
        insecure=False, where="of OCIRepository apps/web")
    assert (access.username, access.password) == (USER, PASSWORD)
    assert PASSWORD not in repr(access)
    assert "PRIVATE KEY" not in repr(access)
    assert sorted(await list_oci_tags(f"oci://{host}/private/web", access)) == ["1.0.0", "1.1.0"]


@pytest.mark.parametrize(("secret", "certs", "expected"), [
    ({"username": _b64("u"), "password": _b64("p")}, {}, ("u", "p", None)),
    ({}, {"caFile": _b64("CA")}, (None, None, "CA")),
    ({".dockerconfigjson": _b64(json.dumps({"auths": {"reg.io": {"username": "a",
                                                                  "password": "b"}}}))},
     {}, ("a", "b", None)),
    ({".dockerconfigjson": _b64(json.dumps({"auths": {"other.io": {"auth": _b64("a:b")}}}))},
     {}, (None, None, None)),
])
def test_secret_formats(secret: dict[str, str], certs: dict[str, str],
                        expected: tuple[str | None, ...]) -> None:
    access = build_source_access("reg.io", {"data": secret}, {"data": certs}, False)
    assert (access.username, access.password, access.ca_pem) == expected


def test_a_broken_secret_is_named() -> None:
    with pytest.raises(ChartSourceError, match="Secret of HelmRepository a/b: key password"):
        build_source_access("h", {"data": {"password": "%%%"}}, None, False,
                            where="of HelmRepository a/b")


@pytest.fixture
async def helm_repo() -> AsyncIterator[str]:
    index = "apiVersion: v1\nentries:\n  web:\n  - version: 1.0.0\n  - version: 1.1.0\n"

    async def handle(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Basic " + _b64(f"{USER}:{PASSWORD}"):
            return web.Response(status=401)
        return web.Response(text=index)

    app = web.Application()
    app.router.add_get("/charts/index.yaml", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/charts"
    finally:
        await runner.cleanup()


async def test_helm_repository_with_basic_auth(helm_repo: str) -> None:
    access = SourceAccess(username=USER, password=PASSWORD)
    assert await list_helm_repository_versions(helm_repo, "web", access) == ["1.0.0", "1.1.0"]
    with pytest.raises(ChartSourceError, match="refused anonymous access"):
        await list_helm_repository_versions(helm_repo, "web")


@pytest.mark.parametrize(("text", "problem"), [
    ("- a list", "is not a Helm repository index"),
    ("entries: [1]", "has no valid entries map"),
    ("a: [", "is not valid YAML"),
])
def test_a_bad_index_is_named(text: str, problem: str) -> None:
    with pytest.raises(ChartSourceError, match=problem):
        parse_index_versions(text, "web", "http://x/index.yaml")
    assert parse_index_versions("entries:\n  web:\n  - {version: 1.0.0}\n  - 7\n", "web",
                                "x") == ["1.0.0"]
