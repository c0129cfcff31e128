"""List the chart versions a Flux source offers (preflight: "does the target exist?").

HTTP Helm repositories: ``<spec.url>/index.yaml``. OCI repositories
(``oci://host/path``): the distribution API's ``/v2/<path>/tags/list`` (plain HTTP when
the source says ``insecure: true``). Called by the UpgradeRequest reconciler; raises
:class:`~fluxup.errors.ChartSourceError` with the URL (never credentials) on failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
from ruamel.yaml import YAML

from fluxup.errors import ChartSourceError

__all__ = ["list_helm_repository_versions", "list_oci_tags", "parse_index_versions"]


async def list_helm_repository_versions(
    url: str, chart: str, http_timeout: float = 10.0
) -> list[str]:
    """Versions of ``chart`` in the HTTP Helm repository at ``url``."""
    index_url = url.rstrip("/") + "/index.yaml"
    try:
        async with httpx.AsyncClient(timeout=http_timeout) as client:
            resp = await client.get(index_url)
            resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise ChartSourceError(f"cannot read Helm repository index {index_url}: {exc}") from None
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


async def list_oci_tags(url: str, insecure: bool, http_timeout: float = 10.0) -> list[str]:
    """Tags of the OCI repository ``oci://host[:port]/path``."""
    if not url.startswith("oci://"):
        raise ChartSourceError(f"{url} is not an oci:// URL")
    host, _, path = url.removeprefix("oci://").partition("/")
    scheme = "http" if insecure else "https"
    tags_url = f"{scheme}://{host}/v2/{path}/tags/list"
    try:
        async with httpx.AsyncClient(timeout=http_timeout) as client:
            resp = await client.get(tags_url)
            resp.raise_for_status()
            tags = resp.json().get("tags") or []
    except (httpx.HTTPError, ValueError) as exc:
        raise ChartSourceError(f"cannot list tags of {url}: {exc}") from None
    return [str(t) for t in tags]
