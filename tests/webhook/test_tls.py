"""HTTPS serving and certificate reload: rotate the files while requests flow."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from cryptography import x509

from certs.files import CertFiles, ensure_cert_files
from tests.webhook.conftest import NOW, review_body, settings
from webhook.app import create_app
from webhook.tls import ReloadingTLS

HOSTS = ["127.0.0.1", "localhost"]


def _serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


async def _served_serial(port: int, ca: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    await writer.wait_closed()
    return x509.load_der_x509_certificate(der).serial_number


async def _wait_for(condition: Any) -> None:
    """Poll ``condition`` (what the server presents) for up to 10 seconds."""
    for _ in range(500):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met within 10s")


async def test_rotation_while_requests_flow_drops_nothing(tmp_path: Path) -> None:
    files, _ = ensure_cert_files(tmp_path, HOSTS)
    tls = ReloadingTLS(files.cert, files.key)
    app = await create_app(settings(cert_reload_interval=0.05), tls, clock=lambda: NOW)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=tls.server_context)
    assert server.port is not None
    port = server.port
    client_ssl = ssl.create_default_context(cafile=str(files.ca_bundle))
    body = review_body("HelmRelease", {"metadata": {"name": "x"}, "spec": {}}, None,
                       operation="CREATE")
    results: list[int] = []
    stop = asyncio.Event()

    async def stream() -> None:
        # A new connection (and TLS handshake) per request: every rotation is exercised.
        connector = aiohttp.TCPConnector(ssl=client_ssl, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            while not stop.is_set():
                async with session.post(f"https://127.0.0.1:{port}/mutate", json=body) as r:
                    results.append(r.status)

    try:
        workers = [asyncio.create_task(stream()) for _ in range(4)]
        serials = {await _served_serial(port, files.ca_bundle)}
        for _ in range(5):
            await asyncio.to_thread(ensure_cert_files, tmp_path, HOSTS, renew=True)
            expected = _serial(files.cert)

            async def rotated(expected: int = expected) -> bool:
                return await _served_serial(port, files.ca_bundle) == expected

            await _wait_for(rotated)
            serials.add(expected)
        stop.set()
        await asyncio.gather(*workers)
    finally:
        stop.set()
        await server.close()
    assert len(serials) == 6
    assert tls.reloads >= 5
    assert len(results) > 20
    assert set(results) == {200}


async def test_inconsistent_files_keep_the_old_certificate(tmp_path: Path) -> None:
    files, _ = ensure_cert_files(tmp_path, HOSTS)
    tls = ReloadingTLS(files.cert, files.key)
    first = tls.serving.serial
    other = CertFiles(tmp_path / "other")
    ensure_cert_files(other.directory, HOSTS)
    files.key.write_bytes(other.key.read_bytes())  # key no longer matches the certificate
    assert await tls.reload_if_changed() is False
    assert tls.failures == 1
    assert tls.serving.serial == first
    files.cert.write_bytes(other.cert.read_bytes())  # now a consistent pair again
    assert await tls.reload_if_changed() is True
    assert tls.serving.serial == _serial(other.cert)
    assert await tls.reload_if_changed() is False  # unchanged files: nothing to do


async def test_metrics_report_certificate_state(tmp_path: Path) -> None:
    files, _ = ensure_cert_files(tmp_path, HOSTS)
    tls = ReloadingTLS(files.cert, files.key)
    app = await create_app(settings(), tls, clock=lambda: NOW)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=tls.server_context)
    try:
        connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(
            cafile=str(files.ca_bundle)))
        async with aiohttp.ClientSession(connector=connector) as session, session.get(
            f"https://127.0.0.1:{server.port}/metrics"
        ) as resp:
            text = await resp.text()
    finally:
        await server.close()
    assert 'fluxup_webhook_certificate_reloads_total{result="success"} 0' in text
    assert f"fluxup_webhook_certificate_not_after_seconds {tls.serving.not_after:.0f}" in text
