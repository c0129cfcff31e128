"""Serving TLS for the webhook, reloaded from disk when the certificate files change.

:class:`ReloadingTLS` owns the server ``SSLContext`` handed to aiohttp once. Its SNI
callback (OpenSSL calls it for every handshake, with or without SNI) points each new
connection at the *current* context; :meth:`ReloadingTLS.reload_if_changed` builds a
fresh context from the files off the event loop and swaps it in only if it loads, so
rotating the files (a Secret volume update, ``fluxup certs write``) never drops or fails
a request: established connections keep their session, new ones get the new certificate.
Key material is never logged; only the certificate's serial and expiry are.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

__all__ = ["ReloadingTLS", "ServingCert"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingCert:
    """What is being served (never the key)."""

    fingerprint: str
    serial: int
    not_after: float


def _build_context(cert_file: Path, key_file: Path) -> tuple[ssl.SSLContext, ServingCert]:
    """Load the pair into a new server context; raises if the files are inconsistent."""
    before = _digest(cert_file, key_file)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    if _digest(cert_file, key_file) != before:  # changed while loading: try again later
        raise ssl.SSLError("certificate files changed while loading")
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    info = ServingCert(before, cert.serial_number, cert.not_valid_after_utc.timestamp())
    return context, info


def _digest(cert_file: Path, key_file: Path) -> str:
    digest = hashlib.sha256(cert_file.read_bytes())
    digest.update(b"\0")
    digest.update(key_file.read_bytes())
    return digest.hexdigest()


class ReloadingTLS:
    """A server SSL context whose certificate follows the files on disk."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file, self.key_file = cert_file, key_file
        self._current, self.serving = _build_context(cert_file, key_file)
        self.server_context, _ = _build_context(cert_file, key_file)
        self.server_context.sni_callback = self._select
        self.reloads = 0
        self.failures = 0

    def _select(self, connection: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        connection.context = self._current

    def _changed(self) -> bool:
        try:
            return _digest(self.cert_file, self.key_file) != self.serving.fingerprint
        except OSError:
            return False

    async def reload_if_changed(self) -> bool:
        """Swap in the files' certificate if they changed and load; True if swapped."""
        if not await asyncio.to_thread(self._changed):
            return False
        try:
            context, info = await asyncio.to_thread(
                _build_context, self.cert_file, self.key_file
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            self.failures += 1
            log.warning(
                "serving certificate files changed but do not load yet (%s); "
                "keeping serial %x",
                type(exc).__name__,
                self.serving.serial,
            )
            return False
        self._current, self.serving = context, info
        self.reloads += 1
        log.info("serving certificate reloaded: serial %x", info.serial)
        return True

    async def watch(self, interval: float) -> None:
        """Poll the files every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await self.reload_if_changed()
