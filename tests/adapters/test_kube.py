"""KubeApi translates transport failures (refused connection, timeout) into KubeError,
so the reconcilers retry them like any API error instead of crashing a handler."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from kubernetes_asyncio.client import ApiClient, Configuration

from fluxup.adapters.kube import KubeApi, R, new_api_client
from fluxup.errors import KubeError
from tests.localserver import serve_locally


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_refused_connection_is_a_kube_error() -> None:
    config = Configuration(host=f"http://127.0.0.1:{_closed_port()}")
    async with ApiClient(config) as api:
        with pytest.raises(KubeError, match=r"get managedapps web: the API server could not be "
                                             r"reached \(ClientConnectorError\)"):
            await KubeApi(api).get(R.MANAGEDAPP, "apps", "web")


async def test_a_timeout_is_a_kube_error() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = Configuration(host=f"http://127.0.0.1:{port}")
    try:
        async with ApiClient(config) as api:
            with pytest.raises(KubeError, match=r"list managedapps: the API server could not "
                                                 r"be reached \(TimeoutError\)"):
                await KubeApi(api, timeout=0.2).list(R.MANAGEDAPP, "apps")
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


# --- new_api_client: no look-ups in the environment per request --------------------------


async def test_new_api_client_reads_no_netrc_per_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiohttp import web

    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    seen: list[str | None] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"metadata": {"name": "web"}})

    app = web.Application()
    app.router.add_get("/apis/fluxup.dev/v1alpha1/namespaces/apps/managedapps/web", answer)
    async with serve_locally(app) as base:
        async with ApiClient(Configuration(host=base)) as plain:
            await KubeApi(plain).get(R.MANAGEDAPP, "apps", "web")
        async with new_api_client(Configuration(host=base)) as api:
            await KubeApi(api).get(R.MANAGEDAPP, "apps", "web")
            await KubeApi(api).get(R.MANAGEDAPP, "apps", "web")
    # the library's own session looks netrc up on every call (and would send it)
    assert str(seen[0]).startswith("Basic ")
    assert seen[1:] == [None, None]


async def test_new_api_client_takes_the_proxy_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    config = Configuration(host="https://kube.example:6443")
    await new_api_client(config).close()
    assert config.proxy == "http://user:pw@proxy.internal:3128"

    monkeypatch.setenv("NO_PROXY", "kube.example")
    bypassed = Configuration(host="https://kube.example:6443")
    await new_api_client(bypassed).close()
    assert not bypassed.proxy

    named = Configuration(host="https://kube.example:6443")
    named.proxy = "http://chosen:8080"
    await new_api_client(named).close()
    assert named.proxy == "http://chosen:8080"
