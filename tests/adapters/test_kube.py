"""KubeApi translates transport failures (refused connection, timeout) into KubeError,
so the reconcilers retry them like any API error instead of crashing a handler."""

from __future__ import annotations

import asyncio
import socket

import pytest
from kubernetes_asyncio.client import ApiClient, Configuration

from fluxup.adapters.kube import KubeApi, R
from fluxup.errors import KubeError


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
