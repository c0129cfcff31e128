"""List the chart versions a Flux source offers (preflight: "does the target exist?").

HTTP Helm repositories: ``<spec.url>/index.yaml`` (Basic auth when the source has
credentials). OCI repositories (``oci://host/path``): the distribution API's
``/v2/<path>/tags/list``, following the registry's challenge — the Docker/OCI token flow
(``WWW-Authenticate: Bearer realm=…,service=…,scope=…``: a pull token, anonymous or
with the source's credentials) or Basic auth — and ``Link`` pages. TLS follows the
source: :class:`SourceAccess` carries the credentials and the ``certSecretRef`` CA and
client certificate, built from the Flux Secrets by :func:`build_source_access`; plain
HTTP only when the source says ``insecure: true``. Index parsing runs in a worker thread.

Called by the UpgradeRequest reconciler; raises :class:`~fluxup.errors.ChartSourceError`
naming the URL and what failed — never credentials, tokens or response bodies.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML

from fluxup.errors import ChartSourceError

__all__ = [
    "SourceAccess",
    "build_source_access",
    "list_helm_repository_versions",
    "list_oci_tags",
    "parse_index_versions",
]

_MAX_PAGES = 50
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class SourceAccess:
    """How to reach a chart source: credentials (``secretRef``), TLS (``certSecretRef``:
    a CA and an optional client certificate, PEM) and ``insecure`` (plain HTTP, OCI)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_pem: str | None = None
    cert_pem: str | None = None
    key_pem: str | None = field(default=None, repr=False)
    insecure: bool = False


def _text(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ChartSourceError(f"Secret {where}: key {key} is not base64 text") from None


def build_source_access(
    host: str,
    secret: Mapping[str, Any] | None,
    cert_secret: Mapping[str, Any] | None,
    insecure: bool,
    where: str = "",
) -> SourceAccess:
    """Read Flux's Secret formats: ``username``/``password`` or a
    ``.dockerconfigjson`` entry for ``host`` (``secretRef``); ``ca.crt``, ``tls.crt`` and
    ``tls.key`` (``certSecretRef``; also the older ``caFile``/``certFile``/``keyFile``)."""
    data = (secret or {}).get("data") or {}
    username, password = _text(data, "username", where), _text(data, "password", where)
    config = _text(data, ".dockerconfigjson", where)
    if config and not password:
        try:
            auths = json.loads(config).get("auths") or {}
        except (ValueError, AttributeError):
            raise ChartSourceError(f"Secret {where}: .dockerconfigjson is not JSON") from None
        entry = auths.get(host) or auths.get(f"https://{host}") or {}
        username, password = entry.get("username"), entry.get("password")
        if entry.get("auth") and not password:
            try:
                username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ChartSourceError(f"Secret {where}: auth for {host} is not base64") from None
    certs = (cert_secret or {}).get("data") or {}
    return SourceAccess(
        username=username or None,
        password=password or None,
        ca_pem=_text(certs, "ca.crt", where) or _text(certs, "caFile", where),
        cert_pem=_text(certs, "tls.crt", where) or _text(certs, "certFile", where),
        key_pem=_text(certs, "tls.key", where) or _text(certs, "keyFile", where),
        insecure=insecure,
    )


def _tls(access: SourceAccess) -> ssl.SSLContext | bool:
    if not (access.ca_pem or access.cert_pem):
        return True
    context = ssl.create_default_context(cadata=access.ca_pem) if access.ca_pem else \
        ssl.create_default_context()
    if access.cert_pem and access.key_pem:
        # ssl loads a client certificate only from files: private ones, gone right after
        with tempfile.TemporaryDirectory(prefix="fluxup-tls-") as directory:
            cert, key = Path(directory, "tls.crt"), Path(directory, "tls.key")
            cert.write_text(access.cert_pem)
            key.touch(mode=0o600)
            key.write_text(access.key_pem)
            context.load_cert_chain(cert, key)
    return context


async def _client(access: SourceAccess, http_timeout: float) -> httpx.AsyncClient:
    try:
        verify = await asyncio.to_thread(_tls, access)
    except (ssl.SSLError, ValueError) as exc:
        raise ChartSourceError(f"the certSecretRef certificates cannot be used ({exc})") from None
    return httpx.AsyncClient(timeout=http_timeout, verify=verify, trust_env=False)


def _describe(exc: Exception) -> str:
    """What went wrong, in words that never include a URL's userinfo or a body."""
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    cause: BaseException | None = exc
    for _ in range(6):  # httpx wraps httpcore, which wraps the ssl error
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({cause.verify_message}); set certSecretRef"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed ({cause.reason}); check certSecretRef"
        cause = (cause.__cause__ or cause.__context__) if cause else None
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect"
    return type(exc).__name__


async def list_helm_repository_versions(
    url: str, chart: str, access: SourceAccess | None = None, http_timeout: float = 10.0
) -> list[str]:
    """Versions of ``chart`` in the HTTP Helm repository at ``url``."""
    access = access or SourceAccess()
    index_url = url.rstrip("/") + "/index.yaml"
    auth = (access.username or "", access.password) if access.password else None
    try:
        async with await _client(access, http_timeout) as client:
            resp = await client.get(index_url, auth=auth)
    except (httpx.HTTPError, ssl.SSLError) as exc:
        raise ChartSourceError(f"cannot read Helm repository index {index_url}: "
                               f"{_describe(exc)}") from None
    if resp.status_code in (401, 403):
        who = "the secretRef credentials" if auth else "anonymous access"
        raise ChartSourceError(f"{index_url} refused {who} (HTTP {resp.status_code})")
    if resp.status_code != 200:
        raise ChartSourceError(f"cannot read Helm repository index {index_url}: "
                               f"HTTP {resp.status_code}")
    # a big index.yaml takes seconds to parse: a worker thread, never the event loop
    return await asyncio.to_thread(parse_index_versions, resp.text, chart, index_url)


def parse_index_versions(text: str, chart: str, where: str) -> list[str]:
    """Versions of ``chart`` listed in the Helm repository index ``text``."""
    try:
        index = YAML(typ="safe").load(text)
    except Exception as exc:  # ruamel raises several types for bad YAML
        raise ChartSourceError(f"{where} is not valid YAML: {exc}") from None
    if not isinstance(index, Mapping):
        raise ChartSourceError(f"{where} is not a Helm repository index")
    entries = index.get("entries") or {}
    if not isinstance(entries, Mapping):
        raise ChartSourceError(f"{where} has no valid entries map")
    listed: Any = entries.get(chart) or []
    return [str(e.get("version")) for e in listed if isinstance(e, Mapping) and e.get("version")]


def _challenge(resp: httpx.Response) -> tuple[str, dict[str, str]]:
    header = resp.headers.get("www-authenticate", "")
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(_CHALLENGE.findall(rest))


async def _bearer_token(
    client: httpx.AsyncClient, params: dict[str, str], path: str, access: SourceAccess, url: str
) -> str:
    realm = params.get("realm")
    if not realm or not realm.startswith(("https://", "http://")):
        raise ChartSourceError(f"{url}: the registry's token challenge names no usable realm")
    query = {"scope": params.get("scope") or f"repository:{path}:pull"}
    if params.get("service"):
        query["service"] = params["service"]
    auth = (access.username or "", access.password) if access.password else None
    try:
        resp = await client.get(realm, params=query, auth=auth)
    except (httpx.HTTPError, ssl.SSLError) as exc:
        raise ChartSourceError(f"{url}: cannot get a registry token: {_describe(exc)}") from None
    if resp.status_code != 200:
        who = "the secretRef credentials" if auth else "anonymous access"
        raise ChartSourceError(f"{url}: the registry's token service refused {who} "
                               f"(HTTP {resp.status_code})")
    try:
        body = resp.json()
        token = body.get("token") or body.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise ChartSourceError(f"{url}: the registry's token service answered no token")
    return token


async def list_oci_tags(
    url: str, access: SourceAccess | None = None, http_timeout: float = 10.0
) -> list[str]:
    """Tags of the OCI repository ``oci://host[:port]/path``."""
    access = access or SourceAccess()
    if not url.startswith("oci://"):
        raise ChartSourceError(f"{url} is not an oci:// URL")
    host, _, path = url.removeprefix("oci://").partition("/")
    base = f"{'http' if access.insecure else 'https'}://{host}"
    next_url: str | None = f"{base}/v2/{path}/tags/list"
    headers: dict[str, str] = {}
    tags: list[str] = []
    try:
        async with await _client(access, http_timeout) as client:
            for _ in range(_MAX_PAGES):
                if next_url is None:
                    break
                resp = await client.get(next_url, headers=headers)
                if resp.status_code == 401 and not headers:
                    scheme, params = _challenge(resp)
                    if scheme == "bearer":
                        token = await _bearer_token(client, params, path, access, url)
                        headers = {"Authorization": f"Bearer {token}"}
                    elif scheme == "basic" and access.password:
                        basic = f"{access.username or ''}:{access.password}".encode()
                        headers = {"Authorization": "Basic " + base64.b64encode(basic).decode()}
                    else:
                        raise ChartSourceError(f"{url}: the registry wants credentials; "
                                               "set the source's secretRef")
                    resp = await client.get(next_url, headers=headers)
                if resp.status_code in (401, 403):
                    raise ChartSourceError(f"{url}: the registry refused access "
                                           f"(HTTP {resp.status_code})")
                if resp.status_code == 404:
                    raise ChartSourceError(f"{url}: no such repository in the registry")
                if resp.status_code != 200:
                    raise ChartSourceError(f"cannot list tags of {url}: HTTP {resp.status_code}")
                try:
                    page = resp.json().get("tags") or []
                except (ValueError, AttributeError):
                    raise ChartSourceError(f"{url}: the registry answered no tag list") from None
                tags += [str(t) for t in page]
                link = resp.links.get("next", {}).get("url")
                next_url = str(httpx.URL(base).join(link)) if link else None
    except (httpx.HTTPError, ssl.SSLError) as exc:
        raise ChartSourceError(f"cannot list tags of {url}: {_describe(exc)}") from None
    return tags
