"""Certificate files on disk, for running the webhook locally (tests, the sandbox, dev).

:func:`ensure_cert_files` keeps ``ca.crt``, ``ca.key``, ``tls.crt``, ``tls.key`` and
``ca-bundle.crt`` in a directory valid for the given hosts, (re)issuing only what
:mod:`certs.renewal` says is due (or everything but the CA with ``renew=True``, which is
how tests rotate the serving certificate). Every file is replaced atomically and keys are
created with mode 0600, so a reloading server never reads half a file.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from certs.authority import KeyPair
from certs.bundle import (
    CA_BUNDLE_KEY,
    CA_CERT_KEY,
    CA_KEY_KEY,
    TLS_CERT_KEY,
    TLS_KEY_KEY,
    CertBundle,
    join_pem,
)
from certs.renewal import RenewalPlan, build_renewed_bundle, determine_renewal

__all__ = ["CertFiles", "ensure_cert_files", "read_cert_files", "write_cert_files"]


@dataclass(frozen=True)
class CertFiles:
    """Where the files of one bundle live."""

    directory: Path

    @property
    def cert(self) -> Path:
        return self.directory / TLS_CERT_KEY

    @property
    def key(self) -> Path:
        return self.directory / TLS_KEY_KEY

    @property
    def ca_cert(self) -> Path:
        return self.directory / CA_CERT_KEY

    @property
    def ca_key(self) -> Path:
        return self.directory / CA_KEY_KEY

    @property
    def ca_bundle(self) -> Path:
        return self.directory / CA_BUNDLE_KEY


def _write_atomic(path: Path, content: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_cert_files(files: CertFiles) -> CertBundle | None:
    """The bundle in ``files``; ``None`` if any file is missing."""
    try:
        ca = KeyPair(files.ca_cert.read_bytes(), files.ca_key.read_bytes())
        serving = KeyPair(files.cert.read_bytes(), files.key.read_bytes())
        trusted = files.ca_bundle.read_bytes() if files.ca_bundle.exists() else b""
    except FileNotFoundError:
        return None
    return CertBundle(ca, serving, join_pem([ca.cert_pem, trusted]))


def write_cert_files(files: CertFiles, bundle: CertBundle) -> None:
    """Write every file atomically; keys 0600, certificates 0644."""
    files.directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(files.ca_key, bundle.ca.key_pem, 0o600)
    _write_atomic(files.ca_cert, bundle.ca.cert_pem, 0o644)
    _write_atomic(files.ca_bundle, bundle.trusted_cas, 0o644)
    _write_atomic(files.key, bundle.serving.key_pem, 0o600)
    _write_atomic(files.cert, bundle.serving.cert_pem, 0o644)


def ensure_cert_files(
    directory: Path,
    hosts: Sequence[str],
    now: dt.datetime | None = None,
    *,
    renew: bool = False,
) -> tuple[CertFiles, RenewalPlan]:
    """Keep valid certificates for ``hosts`` in ``directory``; ``renew`` forces a new
    serving certificate from the same CA."""
    when = now or dt.datetime.now(dt.UTC)
    files = CertFiles(Path(directory))
    current = read_cert_files(files)
    plan = determine_renewal(current, hosts, when)
    if renew and not plan.needed:
        plan = RenewalPlan(False, True, ("renewal requested",))
    if plan.needed or current is None:
        write_cert_files(files, build_renewed_bundle(current, plan, hosts, when))
    return files, plan
