"""A real OCI registry behind token auth and (mutual) TLS, for chart-source tests.

Debian's distribution registry (``docker-registry``, the CNCF registry v2) is started on
loopback with ``auth.token`` (the Docker/OCI token flow) and ``http.tls`` requiring a
client certificate. What a registry vendor runs beside it — the token service that
issues pull tokens — cannot be installed here, so :class:`TokenService` plays it: an
aiohttp endpoint that answers ``GET /token?service=…&scope=…`` with an RS256 JWT the
registry verifies against ``rootcertbundle`` (the ``x5c`` chain). ``public/*`` needs no
credentials; ``private/*`` needs ``reader``/``s3cret``. Tags are pushed before the
registry is locked: it first runs without auth on the same storage.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import secrets
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from fluxup.sandbox.processes import start_process, stop_process, wait_until
from fluxup.sandbox.registry import REGISTRY_BINARY, push_image, start_registry

SERVICE = "fluxup-test-registry"
ISSUER = "fluxup-test-tokens"
USER, PASSWORD = "reader", "s3cret"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert(subject: str, key: rsa.RSAPrivateKey, issuer: tuple[x509.Certificate,
          rsa.RSAPrivateKey] | None = None, ca: bool = False,
          ip: str | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer[0].subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Pki:
    ca_pem: str
    server_pem: str
    server_key: str
    client_pem: str
    client_key: str
    signing_key: rsa.RSAPrivateKey
    signing_der: bytes
    signing_pem: str

    @classmethod
    def create(cls) -> Pki:
        ca_key = _key()
        ca = _cert("fluxup test CA", ca_key, ca=True)
        server_key, client_key, signing_key = _key(), _key(), _key()
        server = _cert("127.0.0.1", server_key, (ca, ca_key), ip="127.0.0.1")
        client = _cert("fluxup", client_key, (ca, ca_key))
        signing = _cert("fluxup token signer", signing_key)
        return cls(_cert_pem(ca), _cert_pem(server), _pem(server_key), _cert_pem(client),
                   _pem(client_key), signing_key,
                   signing.public_bytes(serialization.Encoding.DER), _cert_pem(signing))


class TokenService:
    """Issues registry pull tokens (see the module docstring for who gets one)."""

    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.requests: list[tuple[str, str | None]] = []

    def _jwt(self, subject: str, repo: str) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(
            self.pki.signing_der).decode()]}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "iat": now, "nbf": now - 30,
                  "exp": now + 300, "jti": secrets.token_hex(8),
                  "access": [{"type": "repository", "name": repo, "actions": ["pull"]}]}
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.pki.signing_key.sign(signing.encode(), padding.PKCS1v15(),
                                              hashes.SHA256())
        return f"{signing}.{_b64url(signature)}"

    async def handle(self, request: web.Request) -> web.Response:
        scope = request.query.get("scope", "")
        header = request.headers.get("Authorization", "")
        user = None
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if (user, password) != (USER, PASSWORD):
                return web.Response(status=401)
        self.requests.append((scope, user))
        if request.query.get("service") != SERVICE:
            return web.Response(status=400)
        _, repo, _ = scope.split(":") if scope.count(":") == 2 else ("", "", "")
        if repo.startswith("private/") and user is None:
            return web.Response(status=401)
        return web.json_response({"token": self._jwt(user or "anonymous", repo)})


def _config(storage: Path, port: int, realm: str, files: dict[str, Path]) -> str:
    return (
        "version: 0.1\nlog:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {json.dumps(str(storage))}\n"
        f"http:\n  addr: {json.dumps(f'127.0.0.1:{port}')}\n"
        f"  secret: {json.dumps(secrets.token_hex(8))}\n"
        f"  tls:\n    certificate: {json.dumps(str(files['cert']))}\n"
        f"    key: {json.dumps(str(files['key']))}\n"
        f"    clientcas: [{json.dumps(str(files['ca']))}]\n"
        f"auth:\n  token:\n    realm: {json.dumps(realm)}\n    service: {SERVICE}\n"
        f"    issuer: {ISSUER}\n    rootcertbundle: {json.dumps(str(files['signing']))}\n"
    )


@dataclass
class LockedRegistry:
    port: int
    pki: Pki


def run_locked_registry(directory: Path, realm_port: int) -> Iterator[LockedRegistry]:
    """Push the test tags, then serve them behind token auth + mutual TLS (generator)."""
    token = secrets.token_hex(6)
    logs = directory / "logs"
    logs.mkdir(parents=True)
    pid, port = start_registry(directory, token, logs)
    try:
        for repo, tag in (("private/web", "1.0.0"), ("private/web", "1.1.0"),
                          ("public/web", "2.0.0")):
            push_image(f"http://127.0.0.1:{port}", repo, tag)
    finally:
        stop_process(pid, token)
    pki = Pki.create()
    files = {name: directory / f"{name}.pem" for name in ("cert", "key", "ca", "signing")}
    files["cert"].write_text(pki.server_pem)
    files["key"].write_text(pki.server_key)
    files["ca"].write_text(pki.ca_pem)
    files["signing"].write_text(pki.signing_pem)
    config = directory / "locked.yml"
    config.write_text(_config(directory / "storage", port, f"http://127.0.0.1:{realm_port}/token",
                              files))
    pid = start_process("oci-registry-locked", [str(REGISTRY_BINARY), "serve", str(config)],
                        logs, token, cwd=directory)

    def answers() -> bool:
        try:
            context = ssl.create_default_context(cafile=str(files["ca"]))
            context.load_cert_chain(files["cert"], files["key"])
            with httpx.Client(verify=context) as client:
                return client.get(f"https://127.0.0.1:{port}/v2/").status_code == 401
        except httpx.HTTPError:
            return False

    try:
        wait_until("the locked registry", answers, 30, logs / "oci-registry-locked.log")
        yield LockedRegistry(port, pki)
    finally:
        stop_process(pid, token)
