"""Pure decisions about the webhook's certificates: does anything need (re)issuing?

:func:`determine_renewal` inspects a bundle (or its absence) for the hosts the webhook
serves at a given time and says what to renew and why; :func:`build_renewed_bundle`
issues it with :mod:`certs.authority`. A new CA is added to the trust bundle while the
old one stays until it expires, so webhook configurations never distrust a serving
certificate still in use. No I/O; used by :mod:`certs.ensure` and :mod:`certs.files`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certs.authority import KeyPair, build_ca, build_serving_cert
from certs.bundle import CertBundle, join_pem

__all__ = [
    "CA_RENEW_BEFORE",
    "CA_VALIDITY",
    "SERVING_RENEW_BEFORE",
    "SERVING_VALIDITY",
    "RenewalPlan",
    "build_renewed_bundle",
    "determine_renewal",
]

CA_VALIDITY = dt.timedelta(days=3650)
CA_RENEW_BEFORE = dt.timedelta(days=365)
SERVING_VALIDITY = dt.timedelta(days=365)
SERVING_RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class RenewalPlan:
    """What to issue and why (reasons are human text for logs; never key material)."""

    renew_ca: bool
    renew_serving: bool
    reasons: tuple[str, ...] = ()

    @property
    def needed(self) -> bool:
        return self.renew_ca or self.renew_serving


def _load(pair: KeyPair) -> tuple[x509.Certificate, object] | None:
    try:
        cert = x509.load_pem_x509_certificate(pair.cert_pem)
        key = serialization.load_pem_private_key(pair.key_pem, password=None)
    except ValueError:
        return None
    return cert, key


def _public_bytes(key: object) -> bytes:
    public = getattr(key, "public_key", None)
    if public is None:
        return b""
    result: bytes = public().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return result


def _cert_public_bytes(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _covers(cert: x509.Certificate, hosts: Sequence[str]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    dns = set(san.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    for host in hosts:
        try:
            if str(ipaddress.ip_address(host)) not in ips:
                return False
        except ValueError:
            if host not in dns:
                return False
    return True


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    ca_key = ca.public_key()
    if not isinstance(ca_key, ec.EllipticCurvePublicKey) or cert.issuer != ca.subject:
        return False
    hash_alg = cert.signature_hash_algorithm
    if hash_alg is None:
        return False
    try:
        ca_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hash_alg))
    except InvalidSignature:
        return False
    return True


def determine_renewal(
    bundle: CertBundle | None,
    hosts: Sequence[str],
    now: dt.datetime,
    *,
    serving_renew_before: dt.timedelta = SERVING_RENEW_BEFORE,
    ca_renew_before: dt.timedelta = CA_RENEW_BEFORE,
) -> RenewalPlan:
    """Whether ``bundle`` serves ``hosts`` well beyond ``now``; what to reissue if not."""
    if bundle is None:
        return RenewalPlan(True, True, ("no certificates stored yet",))
    ca = _load(bundle.ca)
    if ca is None or _public_bytes(ca[1]) != _cert_public_bytes(ca[0]):
        return RenewalPlan(True, True, ("the stored CA is unreadable or does not match its key",))
    ca_cert = ca[0]
    reasons: list[str] = []
    renew_ca = ca_cert.not_valid_after_utc - now < ca_renew_before
    if renew_ca:
        reasons.append(f"the CA expires {ca_cert.not_valid_after_utc:%Y-%m-%d}")
    serving = _load(bundle.serving)
    if serving is None or _public_bytes(serving[1]) != _cert_public_bytes(serving[0]):
        reasons.append("the serving certificate is unreadable or does not match its key")
    else:
        cert = serving[0]
        if cert.not_valid_after_utc - now < serving_renew_before:
            reasons.append(f"the serving certificate expires {cert.not_valid_after_utc:%Y-%m-%d}")
        if not _covers(cert, hosts):
            reasons.append("the serving certificate does not name " + ", ".join(hosts))
        if not _signed_by(cert, ca_cert):
            reasons.append("the serving certificate is not signed by the stored CA")
    return RenewalPlan(renew_ca, renew_ca or bool(reasons), tuple(reasons))


def build_renewed_bundle(
    current: CertBundle | None,
    plan: RenewalPlan,
    hosts: Sequence[str],
    now: dt.datetime,
    *,
    ca_common_name: str = "fluxup-webhook-ca",
    serving_validity: dt.timedelta = SERVING_VALIDITY,
    ca_validity: dt.timedelta = CA_VALIDITY,
) -> CertBundle:
    """Issue what ``plan`` asks for; keeps the previous CA trusted until it expires."""
    if current is not None and not plan.needed:
        return current.without_expired_cas(now)
    old_trusted = current.trusted_cas if current is not None else b""
    ca = build_ca(ca_common_name, ca_validity) if current is None or plan.renew_ca else current.ca
    serving = build_serving_cert(ca, list(hosts), serving_validity)
    return CertBundle(ca, serving, join_pem([ca.cert_pem, old_trusted])).without_expired_cas(now)
