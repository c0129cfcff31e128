"""The sandbox control plane's PKI and kubeconfig, written into the sandbox directory.

Called by :mod:`fluxup.sandbox.controlplane` when a sandbox directory is first brought
up; reused as is on later starts. Certificates come from :mod:`certs.authority`. The
kubeconfig names its cluster ``fluxup-sandbox-<token>``; together with the token in
``sandbox.json`` that is what :func:`fluxup.sandbox.guard.check_sandbox_kubeconfig`
uses to refuse any other cluster.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from certs.authority import build_ca, build_client_cert, build_rsa_keypair, build_serving_cert

__all__ = ["CLUSTER_PREFIX", "SandboxPKI", "build_kubeconfig", "ensure_pki"]

CLUSTER_PREFIX = "fluxup-sandbox-"
SERVICE_CLUSTER_IP = "10.96.0.1"


@dataclass(frozen=True)
class SandboxPKI:
    """Paths of the files the control-plane processes are started with."""

    dir: Path

    @property
    def ca_crt(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def serving_crt(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def admin_crt(self) -> Path:
        return self.dir / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.dir / "admin.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def ensure_pki(directory: Path) -> SandboxPKI:
    """Create the CA, apiserver serving cert, admin client cert and SA keys once."""
    pki = SandboxPKI(directory)
    if pki.sa_pub.exists():
        return pki
    directory.mkdir(parents=True, exist_ok=True)
    ca = build_ca("fluxup-sandbox-ca")
    serving = build_serving_cert(
        ca,
        ["127.0.0.1", "localhost", SERVICE_CLUSTER_IP, "kubernetes", "kubernetes.default",
         "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
    )
    admin = build_client_cert(ca, "fluxup-sandbox-admin", ["system:masters"])
    sa_private, sa_public = build_rsa_keypair()
    pki.ca_crt.write_bytes(ca.cert_pem)
    _write_private(pki.ca_key, ca.key_pem)
    pki.serving_crt.write_bytes(serving.cert_pem)
    _write_private(pki.serving_key, serving.key_pem)
    pki.admin_crt.write_bytes(admin.cert_pem)
    _write_private(pki.admin_key, admin.key_pem)
    _write_private(pki.sa_key, sa_private)
    pki.sa_pub.write_bytes(sa_public)  # written last: marks the PKI complete
    return pki


def new_token() -> str:
    return secrets.token_hex(6)


def build_kubeconfig(pki: SandboxPKI, server: str, token: str) -> str:
    """An admin kubeconfig (YAML text) with embedded certificate data."""

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    name = CLUSTER_PREFIX + token
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: {name}\n  cluster:\n    server: {server}\n"
        f"    certificate-authority-data: {b64(pki.ca_crt)}\n"
        f"users:\n- name: {name}-admin\n  user:\n"
        f"    client-certificate-data: {b64(pki.admin_crt)}\n"
        f"    client-key-data: {b64(pki.admin_key)}\n"
        f"contexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}-admin\n"
        f"current-context: {name}\n"
    )
