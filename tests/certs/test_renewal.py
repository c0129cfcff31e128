"""Pure certificate decisions: the bundle layout and "does it need renewing?"."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from cryptography import x509

from certs.authority import KeyPair, build_ca, build_serving_cert
from certs.bundle import (
    CA_BUNDLE_KEY,
    CertBundle,
    build_secret_data,
    join_pem,
    parse_secret_data,
    service_hosts,
    split_pem,
)
from certs.renewal import build_renewed_bundle, determine_renewal

HOSTS = service_hosts("fluxup-webhook", "fluxup-system")
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def bundle() -> CertBundle:
    ca = build_ca("test-ca")
    return CertBundle(ca, build_serving_cert(ca, HOSTS), ca.cert_pem)


def test_service_hosts() -> None:
    assert HOSTS == ["fluxup-webhook", "fluxup-webhook.fluxup-system",
                     "fluxup-webhook.fluxup-system.svc",
                     "fluxup-webhook.fluxup-system.svc.cluster.local"]


def test_secret_data_round_trip(bundle: CertBundle) -> None:
    data = build_secret_data(bundle)
    assert set(data) == {"tls.crt", "tls.key", "ca.crt", "ca.key", "ca-bundle.crt"}
    assert parse_secret_data(data) == bundle


@pytest.mark.parametrize("broken", [None, {}, {"tls.crt": "x"}, "bad-base64"])
def test_parse_secret_data_incomplete(bundle: CertBundle, broken: object) -> None:
    if broken == "bad-base64":
        data = dict(build_secret_data(bundle), **{"tls.key": "***"})
        assert parse_secret_data(data) is None
    else:
        assert parse_secret_data(broken) is None  # type: ignore[arg-type]


def test_parse_secret_data_without_bundle_key_trusts_the_ca(bundle: CertBundle) -> None:
    data = build_secret_data(bundle)
    del data[CA_BUNDLE_KEY]
    parsed = parse_secret_data(data)
    assert parsed is not None
    assert split_pem(parsed.trusted_cas) == [bundle.ca.cert_pem]


def test_repr_never_shows_keys(bundle: CertBundle) -> None:
    text = repr(bundle)
    assert "PRIVATE" not in text
    assert bundle.serving.key_pem.decode() not in text


def test_join_pem_dedups() -> None:
    a, b = build_ca("a").cert_pem, build_ca("b").cert_pem
    assert split_pem(join_pem([a, b, a])) == [a, b]


def test_nothing_to_renew(bundle: CertBundle) -> None:
    plan = determine_renewal(bundle, HOSTS, NOW)
    assert not plan.needed
    assert build_renewed_bundle(bundle, plan, HOSTS, NOW) == bundle


def test_missing_bundle_issues_everything() -> None:
    plan = determine_renewal(None, HOSTS, NOW)
    assert plan.renew_ca
    assert plan.renew_serving
    new = build_renewed_bundle(None, plan, HOSTS, NOW)
    assert not determine_renewal(new, HOSTS, NOW).needed


def test_serving_near_expiry_renews_serving_only(bundle: CertBundle) -> None:
    later = NOW + dt.timedelta(days=340)
    plan = determine_renewal(bundle, HOSTS, later)
    assert plan.renew_serving
    assert not plan.renew_ca
    assert "expires" in plan.reasons[0]
    new = build_renewed_bundle(bundle, plan, HOSTS, later)
    assert new.ca == bundle.ca
    assert new.serving != bundle.serving


def test_new_hosts_renew_serving(bundle: CertBundle) -> None:
    plan = determine_renewal(bundle, [*HOSTS, "127.0.0.1"], NOW)
    assert plan.renew_serving
    assert not plan.renew_ca
    assert "does not name" in plan.reasons[0]


def test_serving_from_another_ca_renews(bundle: CertBundle) -> None:
    other = build_serving_cert(build_ca("other"), HOSTS)
    plan = determine_renewal(dataclasses.replace(bundle, serving=other), HOSTS, NOW)
    assert plan.renew_serving
    assert "the serving certificate is not signed by the stored CA" in plan.reasons


def test_mismatched_serving_key_renews(bundle: CertBundle) -> None:
    other = build_serving_cert(bundle.ca, HOSTS)
    mixed = KeyPair(bundle.serving.cert_pem, other.key_pem)
    plan = determine_renewal(dataclasses.replace(bundle, serving=mixed), HOSTS, NOW)
    assert plan.renew_serving
    assert "does not match its key" in plan.reasons[0]


def test_unreadable_ca_renews_everything(bundle: CertBundle) -> None:
    broken = dataclasses.replace(bundle, ca=KeyPair(b"junk", bundle.ca.key_pem))
    plan = determine_renewal(broken, HOSTS, NOW)
    assert plan.renew_ca
    assert plan.renew_serving


def test_ca_rotation_keeps_old_ca_trusted_until_it_expires(bundle: CertBundle) -> None:
    later = NOW + dt.timedelta(days=3400)  # within a year of the CA's expiry
    plan = determine_renewal(bundle, HOSTS, later)
    assert plan.renew_ca
    assert plan.renew_serving
    new = build_renewed_bundle(bundle, plan, HOSTS, later)
    trusted = split_pem(new.trusted_cas)
    assert trusted == [new.ca.cert_pem, bundle.ca.cert_pem]
    new_serving = x509.load_pem_x509_certificate(new.serving.cert_pem)
    assert new_serving.issuer == x509.load_pem_x509_certificate(new.ca.cert_pem).subject
    after_old_expiry = NOW + dt.timedelta(days=3651)
    assert split_pem(new.without_expired_cas(after_old_expiry).trusted_cas) == [new.ca.cert_pem]
