"""The webhook's certificate bundle and its layout in a Kubernetes Secret.

A :class:`CertBundle` is the CA pair, the serving pair it signed and the PEM bundle of
every CA the webhook configurations should trust (the current CA first, then older,
still-valid CAs kept during a CA rotation). The Secret is ``kubernetes.io/tls`` with
``tls.crt``/``tls.key`` (what the webhook pod mounts), ``ca.crt``, ``ca.key`` and
``ca-bundle.crt`` — compatible with cert-manager's layout. Pure; no I/O. ``repr`` never
shows keys.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509

from certs.authority import KeyPair

__all__ = [
    "CA_BUNDLE_KEY",
    "CA_CERT_KEY",
    "CA_KEY_KEY",
    "TLS_CERT_KEY",
    "TLS_KEY_KEY",
    "CertBundle",
    "build_secret_data",
    "join_pem",
    "parse_secret_data",
    "service_hosts",
    "split_pem",
]

TLS_CERT_KEY = "tls.crt"
TLS_KEY_KEY = "tls.key"
CA_CERT_KEY = "ca.crt"
CA_KEY_KEY = "ca.key"
CA_BUNDLE_KEY = "ca-bundle.crt"

_BEGIN = b"-----BEGIN CERTIFICATE-----"


def split_pem(bundle: bytes) -> list[bytes]:
    """The certificates of a PEM bundle, each as its own PEM block."""
    blocks: list[bytes] = []
    for part in bundle.split(_BEGIN)[1:]:
        end = part.find(b"-----END CERTIFICATE-----")
        if end >= 0:
            blocks.append(_BEGIN + part[: end + len(b"-----END CERTIFICATE-----")] + b"\n")
    return blocks


def join_pem(certs: Sequence[bytes]) -> bytes:
    """One bundle of distinct certificates, in order."""
    seen: list[bytes] = []
    for cert in certs:
        block = cert.strip() + b"\n"
        if block not in seen:
            seen.append(block)
    return b"".join(seen)


@dataclass(frozen=True)
class CertBundle:
    """CA pair, serving pair and the CA bundle to inject (current CA first)."""

    ca: KeyPair
    serving: KeyPair
    trusted_cas: bytes

    def __repr__(self) -> str:
        trusted = len(split_pem(self.trusted_cas))
        return f"CertBundle(ca={self.ca!r}, serving={self.serving!r}, trusted={trusted} CAs)"

    def without_expired_cas(self, now: dt.datetime) -> CertBundle:
        """The same bundle with CAs that expired before ``now`` dropped from the trust list."""
        keep = [
            pem
            for pem in split_pem(self.trusted_cas)
            if x509.load_pem_x509_certificate(pem).not_valid_after_utc > now
        ]
        trusted = join_pem([self.ca.cert_pem, *keep])
        return CertBundle(self.ca, self.serving, trusted)


def service_hosts(service: str, namespace: str) -> list[str]:
    """The DNS names the API server may use for a Service: short to fully qualified."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def build_secret_data(bundle: CertBundle) -> dict[str, str]:
    """``Secret.data`` (base64 values) for ``bundle``."""
    raw = {
        TLS_CERT_KEY: bundle.serving.cert_pem,
        TLS_KEY_KEY: bundle.serving.key_pem,
        CA_CERT_KEY: bundle.ca.cert_pem,
        CA_KEY_KEY: bundle.ca.key_pem,
        CA_BUNDLE_KEY: bundle.trusted_cas,
    }
    return {k: base64.b64encode(v).decode() for k, v in raw.items()}


def parse_secret_data(data: Mapping[str, str] | None) -> CertBundle | None:
    """The bundle in ``Secret.data``; ``None`` when anything is missing or unreadable."""
    if not data:
        return None
    try:
        raw = {k: base64.b64decode(data[k], validate=True) for k in (
            TLS_CERT_KEY, TLS_KEY_KEY, CA_CERT_KEY, CA_KEY_KEY)}
        trusted = base64.b64decode(data.get(CA_BUNDLE_KEY, ""), validate=True)
    except (KeyError, binascii.Error, ValueError, TypeError):
        return None
    ca = KeyPair(raw[CA_CERT_KEY], raw[CA_KEY_KEY])
    serving = KeyPair(raw[TLS_CERT_KEY], raw[TLS_KEY_KEY])
    return CertBundle(ca, serving, join_pem([ca.cert_pem, *split_pem(trusted)]))
