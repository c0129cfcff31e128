"""Dex, the sandbox's OpenID Connect provider, for logging in to the UI in browser tests.

Used by the UI browser tests (and anyone trying the UI's OIDC login locally): Dex is
built from its published Go module like the rest of the sandbox
(:data:`fluxup.sandbox.components.DEX_VERSION`), serves HTTPS with a certificate from
the sandbox CA, keeps everything in memory and knows a fixed set of users (Dex's own
password database: a real login form, bcrypt-hashed passwords, groups) and one
confidential client whose redirect URI is the UI's ``/auth/callback``. Dex checks the
PKCE verifier of every code that was requested with a challenge (FluxUp always sends one).
It runs as a sandbox process, so ``fluxup sandbox down`` stops it with everything else.

``fluxup demo`` starts it with ``tls=False``: plain HTTP on 127.0.0.1 only, so that a
person's browser reaches the login form without a certificate warning (browsers treat
loopback as a secure context; RFC 8252 allows loopback HTTP redirects). Nothing else
listens beyond loopback, and the demo's users and client secret are made per run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certs.authority import KeyPair, build_serving_cert
from fluxup.sandbox import gobuild
from fluxup.sandbox.components import component
from fluxup.sandbox.controlplane import Sandbox, start_component
from fluxup.sandbox.processes import free_port, is_ours, stop_process, wait_until

__all__ = ["Dex", "DexUser", "build_dex_config", "start_dex"]

PROCESS = "dex"
#: Dex refuses hashes cheaper than bcrypt's default cost (10); that is what we use.
BCRYPT_ROUNDS = 10


@dataclass(frozen=True)
class DexUser:
    """One person in Dex's password database; logs in with ``email`` and ``password``."""

    username: str
    password: str
    groups: tuple[str, ...] = ()

    @property
    def email(self) -> str:
        return f"{self.username}@fluxup.test"


@dataclass(frozen=True)
class DexClient:
    """The OAuth2 client the UI logs in as."""

    client_id: str
    secret: str
    redirect_uris: tuple[str, ...]


def _bcrypt(password: str) -> str:
    import bcrypt  # dev dependency: only the sandbox hashes passwords

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def build_dex_config(issuer: str, listen: str, cert: Path | None, key: Path | None,
                     client: DexClient, users: Sequence[DexUser]) -> dict[str, Any]:
    """Dex's configuration (Dex reads JSON as YAML): in-memory storage, HTTPS only (plain
    HTTP when ``cert`` and ``key`` are ``None``: the loopback demo), the password database
    with ``users``, one client, no consent screen."""
    if (cert is None) != (key is None):
        raise ValueError("Dex needs both a certificate and a key, or neither (plain HTTP)")
    web: dict[str, str] = {"http": listen}
    if cert is not None and key is not None:
        web = {"https": listen, "tlsCert": str(cert), "tlsKey": str(key),
               "tlsMinVersion": "1.2"}
    return {
        "issuer": issuer,
        "storage": {"type": "memory"},
        "web": web,
        "logger": {"level": "info", "format": "text"},
        "oauth2": {"skipApprovalScreen": True, "responseTypes": ["code"]},
        "expiry": {"idTokens": "10m"},
        "staticClients": [{"id": client.client_id, "name": "FluxUp UI",
                           "secret": client.secret,
                           "redirectURIs": list(client.redirect_uris)}],
        "enablePasswordDB": True,
        "staticPasswords": [
            {"email": u.email, "username": u.username, "preferredUsername": u.username,
             "userID": f"fluxup-test-{u.username}", "groups": list(u.groups),
             "hash": _bcrypt(u.password)}
            for u in users
        ],
    }


@dataclass
class Dex:
    """A running Dex of one sandbox."""

    sandbox: Sandbox
    issuer: str
    ca_file: Path
    client: DexClient
    cert_file: Path
    users: dict[str, DexUser] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.sandbox.logs / f"{PROCESS}.log"

    def spki_pin(self) -> str:
        """Base64 SHA-256 of Dex's serving public key, for Chromium's
        ``--ignore-certificate-errors-spki-list``: a browser trusts exactly this key
        without the sandbox CA in its (per-user) certificate store."""
        cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(der).digest()).decode()

    def discovery(self) -> dict[str, Any]:
        """Dex's published OpenID configuration (raises ``OSError`` until it serves)."""
        context = ssl.create_default_context(cafile=str(self.ca_file)) \
            if self.issuer.startswith("https://") else None
        with urllib.request.urlopen(self.issuer + "/.well-known/openid-configuration",
                                    context=context, timeout=5) as resp:
            parsed: dict[str, Any] = json.loads(resp.read())
            return parsed

    def stop(self) -> None:
        pid = self.sandbox.pids.pop(PROCESS, None)
        if pid:
            stop_process(pid, self.sandbox.token)
        self.sandbox.save()


def _serving_pair(sb: Sandbox) -> KeyPair:
    ca = KeyPair(sb.pki.ca_crt.read_bytes(), sb.pki.ca_key.read_bytes())
    return build_serving_cert(ca, ["127.0.0.1", "localhost"])


def start_dex(sb: Sandbox, work: Path, redirect_uris: Sequence[str],
              users: Sequence[DexUser], out: TextIO = sys.stdout, *, tls: bool = True,
              port: int | None = None) -> Dex:
    """Build Dex if needed, start it on ``port`` (default: a free one) and wait until it
    serves discovery.

    The client secret is fresh for every start; TLS uses the sandbox CA
    (``sb.pki.ca_crt``), which is what the UI's ``FLUXUP_UI_OIDC_CA_FILE`` should name.
    ``tls=False`` serves plain HTTP on 127.0.0.1 (the local demo's browser login).
    """
    binary = gobuild.ensure_built(component("dex"), out) / "dex"
    work.mkdir(parents=True, exist_ok=True)
    pair = _serving_pair(sb)
    cert, key = work / "dex.crt", work / "dex.key"
    cert.write_bytes(pair.cert_pem)
    key.touch(mode=0o600)
    key.write_bytes(pair.key_pem)
    port = port or free_port()
    sb.ports[PROCESS] = port
    issuer = f"{'https' if tls else 'http'}://127.0.0.1:{port}/dex"
    client = DexClient("fluxup-ui", secrets.token_urlsafe(24), tuple(redirect_uris))
    config = build_dex_config(issuer, f"127.0.0.1:{port}", cert if tls else None,
                              key if tls else None, client, users)
    config_path = work / "dex.json"
    config_path.touch(mode=0o600)  # holds the client secret and password hashes
    config_path.write_text(json.dumps(config, indent=1))
    if PROCESS in sb.pids and is_ours(sb.pids[PROCESS], sb.token):
        stop_process(sb.pids.pop(PROCESS), sb.token)
    start_component(sb, PROCESS, [str(binary), "serve", str(config_path)], out)
    dex = Dex(sb, issuer, sb.pki.ca_crt, client, cert, {u.username: u for u in users})

    def serving() -> bool:
        try:
            return dex.discovery().get("issuer") == issuer
        except (OSError, ValueError, urllib.error.URLError):
            return False

    wait_until("Dex", serving, 30, dex.log,
               alive=lambda: is_ours(sb.pids[PROCESS], sb.token))
    print(f"  Dex (OIDC provider) on {issuer}", file=out, flush=True)
    return dex
