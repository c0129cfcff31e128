"""Converging the Secret and caBundle through the store protocols (in-memory stores)."""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Mapping
from pathlib import Path

import pytest

from certs.bundle import parse_secret_data, service_hosts, split_pem
from certs.commands import certs_write
from certs.ensure import StoreConflict, StoredSecret, ensure_certificates
from certs.files import CertFiles, ensure_cert_files, read_cert_files
from fluxup.errors import CertificateError, ConfigError

HOSTS = service_hosts("fluxup-webhook", "fluxup-system")
NOW = dt.datetime.now(dt.UTC)


class MemorySecret:
    """A Secret with resourceVersion semantics; ``interfere`` simulates a racing writer."""

    description = "Secret fluxup-system/fluxup-webhook-tls"

    def __init__(self) -> None:
        self.stored: StoredSecret | None = None
        self.version = 0
        self.writes = 0
        self.interfere = 0

    def _put(self, data: Mapping[str, str]) -> None:
        self.version += 1
        self.stored = StoredSecret(dict(data), str(self.version))

    async def read(self) -> StoredSecret | None:
        return self.stored

    async def create(self, data: Mapping[str, str]) -> None:
        if self.interfere:
            self.interfere -= 1
            self._put(data)  # someone else won the race with equally valid data
        if self.stored is not None:
            raise StoreConflict("exists")
        self.writes += 1
        self._put(data)

    async def replace(self, data: Mapping[str, str], resource_version: str) -> None:
        if self.interfere:
            self.interfere -= 1
            self._put(data)
        if self.stored is None or self.stored.resource_version != resource_version:
            raise StoreConflict("changed")
        self.writes += 1
        self._put(data)


class MemoryConfigs:
    def __init__(self, names: list[str]) -> None:
        self.bundles: dict[str, bytes] = dict.fromkeys(names, b"")

    async def inject(self, name: str, ca_bundle: bytes) -> bool:
        if name not in self.bundles:
            raise CertificateError(f"no webhook configuration {name}")
        changed = self.bundles[name] != ca_bundle
        self.bundles[name] = ca_bundle
        return changed


async def test_first_run_creates_secret_and_injects() -> None:
    store, configs = MemorySecret(), MemoryConfigs(["fluxup-gate"])
    outcome = await ensure_certificates(store, configs, ["fluxup-gate"], HOSTS, NOW)
    assert outcome.stored
    assert outcome.injected == ("fluxup-gate",)
    assert store.stored is not None
    stored = parse_secret_data(store.stored.data)
    assert stored == outcome.bundle
    assert configs.bundles["fluxup-gate"] == outcome.bundle.trusted_cas
    assert "issued and stored" in outcome.summary()


async def test_second_run_changes_nothing() -> None:
    store, configs = MemorySecret(), MemoryConfigs(["fluxup-gate"])
    await ensure_certificates(store, configs, ["fluxup-gate"], HOSTS, NOW)
    version = store.version
    outcome = await ensure_certificates(store, configs, ["fluxup-gate"], HOSTS, NOW)
    assert not outcome.stored
    assert outcome.injected == ()
    assert store.version == version


async def test_reinjects_when_a_configuration_lost_its_bundle() -> None:
    store, configs = MemorySecret(), MemoryConfigs(["a", "b"])
    await ensure_certificates(store, configs, ["a", "b"], HOSTS, NOW)
    configs.bundles["b"] = b""  # re-applied manifests reset caBundle
    outcome = await ensure_certificates(store, configs, ["a", "b"], HOSTS, NOW)
    assert outcome.injected == ("b",)


async def test_renewal_near_expiry_replaces_secret() -> None:
    store, configs = MemorySecret(), MemoryConfigs(["fluxup-gate"])
    first = await ensure_certificates(store, configs, ["fluxup-gate"], HOSTS, NOW)
    later = NOW + dt.timedelta(days=350)
    second = await ensure_certificates(store, configs, ["fluxup-gate"], HOSTS, later)
    assert second.stored
    assert second.bundle.ca == first.bundle.ca
    assert second.bundle.serving != first.bundle.serving


async def test_racing_writer_is_converged_on_not_overwritten() -> None:
    store, configs = MemorySecret(), MemoryConfigs(["fluxup-gate"])
    store.interfere = 1
    outcome = await ensure_certificates(store, configs, ["fluxup-gate"], HOSTS, NOW)
    assert store.writes == 0  # the other writer's data was kept
    assert not outcome.stored
    assert store.stored is not None
    assert parse_secret_data(store.stored.data) == outcome.bundle
    assert configs.bundles["fluxup-gate"] == outcome.bundle.trusted_cas


async def test_endless_conflicts_give_a_clear_error() -> None:
    store, configs = MemorySecret(), MemoryConfigs(["fluxup-gate"])
    await ensure_certificates(store, configs, ["fluxup-gate"], HOSTS, NOW)
    store.interfere = 100
    with pytest.raises(CertificateError, match="kept changing"):
        await ensure_certificates(store, configs, ["fluxup-gate"], HOSTS,
                                  NOW + dt.timedelta(days=350))


async def test_missing_configuration_is_an_error() -> None:
    with pytest.raises(CertificateError, match="no webhook configuration"):
        await ensure_certificates(MemorySecret(), MemoryConfigs([]), ["nope"], HOSTS, NOW)


def test_cert_files_written_with_private_key_modes(tmp_path: Path) -> None:
    files, plan = ensure_cert_files(tmp_path / "certs", ["127.0.0.1", "localhost"])
    assert plan.needed
    for key in (files.key, files.ca_key):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    bundle = read_cert_files(files)
    assert bundle is not None
    assert [p.name for p in sorted(files.directory.iterdir())] == [
        "ca-bundle.crt", "ca.crt", "ca.key", "tls.crt", "tls.key"]


def test_cert_files_kept_then_renewed_on_request(tmp_path: Path) -> None:
    files, _ = ensure_cert_files(tmp_path, ["localhost"])
    before = read_cert_files(files)
    _, plan = ensure_cert_files(tmp_path, ["localhost"])
    assert not plan.needed
    assert read_cert_files(files) == before
    _, plan = ensure_cert_files(tmp_path, ["localhost"], renew=True)
    after = read_cert_files(files)
    assert before is not None
    assert after is not None
    assert after.ca == before.ca
    assert after.serving != before.serving
    assert split_pem(after.trusted_cas) == [before.ca.cert_pem]


def test_certs_write_summary_names_files_not_keys(tmp_path: Path) -> None:
    text = certs_write(tmp_path, ["127.0.0.1"])
    files = CertFiles(tmp_path)
    assert str(files.cert) in text
    assert "PRIVATE" not in text
    assert "kept current" in certs_write(tmp_path, ["127.0.0.1"])
    with pytest.raises(ConfigError):
        certs_write(tmp_path, [])
