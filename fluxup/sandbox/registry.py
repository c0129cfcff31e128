"""The sandbox's OCI registry, and pushing Helm charts (and tiny images) into it.

The registry is Debian's ``docker-registry`` package (the CNCF distribution registry v2,
``/usr/bin/docker-registry serve CONFIG``) on 127.0.0.1 with filesystem storage and no
authentication; Flux's OCIRepository reaches it with ``insecure: true`` (plain HTTP).

:func:`push_chart` uploads a packaged chart as Helm does (``helm push``): the config blob
``application/vnd.cncf.helm.config.v1+json`` (Chart.yaml as JSON), one layer
``application/vnd.cncf.helm.chart.content.v1.tar+gzip`` (the .tgz) and an OCI image
manifest tagged with the chart version (``+`` becomes ``_``). Like Helm, it marks the
artifact type through ``config.mediaType`` and leaves ``artifactType`` unset (the OCI
image spec requires ``artifactType`` only when the config is the empty descriptor).
:func:`push_image` pushes a minimal single-layer image, so image tags can be listed.

Used by the sandbox launcher and tests; it talks to the loopback registry only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import secrets
import tarfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from fluxup.errors import SandboxError
from fluxup.sandbox.charts import ChartPackage, read_chart_metadata
from fluxup.sandbox.processes import free_port, is_ours, start_process, wait_until

__all__ = [
    "DEMO_CHART_REPO",
    "DEMO_IMAGE_REPO",
    "HELM_CHART_LAYER",
    "HELM_CONFIG",
    "OCI_MANIFEST",
    "REGISTRY_BINARY",
    "build_registry_config",
    "delete_tag",
    "push_blob",
    "push_chart",
    "push_demo_artifacts",
    "push_image",
    "start_registry",
]

REGISTRY_BINARY = Path("/usr/bin/docker-registry")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
#: Where the seeded fleet (:mod:`fluxup.sandbox.seed`) expects the demo chart and image.
DEMO_CHART_REPO = "charts/demo-app"
DEMO_IMAGE_REPO = "images/demo-app"


def build_registry_config(storage: Path, port: int, secret: str) -> str:
    """The distribution registry's configuration (YAML; JSON scalars keep paths safe)."""
    return (
        "version: 0.1\n"
        "log:\n  level: info\n  formatter: text\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {json.dumps(str(storage))}\n"
        "  delete:\n    enabled: true\n"
        "  maintenance:\n    uploadpurging:\n      enabled: false\n"
        "http:\n"
        f"  addr: {json.dumps(f'127.0.0.1:{port}')}\n"
        f"  secret: {json.dumps(secret)}\n"
        "  headers:\n    X-Content-Type-Options: [nosniff]\n"
        "health:\n  storagedriver:\n    enabled: false\n"
    )


def _answers(port: int) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/v2/", timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


def start_registry(
    dir: Path, token: str, log_dir: Path, *, port: int | None = None
) -> tuple[int, int]:
    """Start the OCI registry storing into ``dir/storage``; return (pid, port).

    Its base URL is ``http://127.0.0.1:PORT``; charts are ``oci://127.0.0.1:PORT/<repo>``.
    Pass the previous ``port`` to keep references stable across restarts.
    """
    if not REGISTRY_BINARY.exists():
        raise SandboxError(
            f"{REGISTRY_BINARY} is missing; install Debian's distribution registry with "
            "`apt-get install -y docker-registry`"
        )
    dir = dir.resolve()
    (dir / "storage").mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = dir / "config.yml"
    config.write_text(build_registry_config(dir / "storage", port, secrets.token_hex(16)))
    log = log_dir / "oci-registry.log"
    pid = start_process("oci-registry", [str(REGISTRY_BINARY), "serve", str(config)],
                        log_dir, token, cwd=dir)
    # Until its exec completes, /proc shows the launcher without our token: wait that out
    # first, so the liveness check below only fails for a process that really exited.
    wait_until("OCI registry to start", lambda: is_ours(pid, token), 10, log)
    wait_until("OCI registry", lambda: _answers(port), 30, log,
               lambda: is_ours(pid, token))
    return pid, port


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _check(resp: httpx.Response, what: str) -> httpx.Response:
    if resp.status_code >= 300:
        raise SandboxError(
            f"registry refused {what}: HTTP {resp.status_code} {resp.text[:500].strip()}"
        )
    return resp


def push_blob(client: httpx.Client, repo: str, data: bytes) -> dict[str, Any]:
    """Upload ``data`` to ``repo`` (monolithic POST + PUT) unless present; its descriptor."""
    digest = _digest(data)
    if client.head(f"/v2/{repo}/blobs/{digest}").status_code != 200:
        started = _check(client.post(f"/v2/{repo}/blobs/uploads/"), "a blob upload")
        location = started.headers.get("Location")
        if not location:
            raise SandboxError("registry started a blob upload without a Location header")
        target = httpx.URL(location)
        if not target.is_absolute_url:
            target = client.base_url.join(location)
        # keep the upload's own query (distribution's _state) and add the digest
        _check(client.put(target.copy_add_param("digest", digest), content=data,
                          headers={"Content-Type": "application/octet-stream"}),
               f"blob {digest}")
    return {"digest": digest, "size": len(data)}


def _put_manifest(client: httpx.Client, repo: str, tag: str, manifest: dict[str, Any]) -> str:
    body = json.dumps(manifest, separators=(",", ":")).encode()
    resp = _check(client.put(f"/v2/{repo}/manifests/{tag}", content=body,
                             headers={"Content-Type": OCI_MANIFEST}), f"manifest {repo}:{tag}")
    digest = _digest(body)
    returned = resp.headers.get("Docker-Content-Digest")
    if returned and returned != digest:
        raise SandboxError(f"registry stored manifest {returned}, expected {digest}")
    return digest


def _client(registry_url: str) -> httpx.Client:
    return httpx.Client(base_url=registry_url.rstrip("/"), timeout=30, trust_env=False)


def push_chart(
    registry_url: str, repo: str, tgz_path: Path, version: str,
    created: datetime | None = None,
) -> str:
    """Push a packaged chart to ``registry_url`` (``http://127.0.0.1:PORT``) as ``repo``.

    ``repo`` is the repository path (``charts/demo-app``), tagged ``version``, which must
    equal the chart's version. Returns the manifest digest (``sha256:...``).
    """
    meta = read_chart_metadata(tgz_path)
    if str(meta.get("version")) != version:
        raise SandboxError(
            f"{tgz_path.name} is chart version {meta.get('version')}, not {version}; "
            "Helm requires the tag to equal the chart version"
        )
    config = json.dumps(meta, separators=(",", ":"), default=str).encode()
    stamp = (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    annotations = {
        "org.opencontainers.image.created": stamp,
        "org.opencontainers.image.title": str(meta.get("name", "")),
        "org.opencontainers.image.version": version,
    }
    if meta.get("description"):
        annotations["org.opencontainers.image.description"] = str(meta["description"])
    with _client(registry_url) as client:
        config_desc = push_blob(client, repo, config)
        layer_desc = push_blob(client, repo, tgz_path.read_bytes())
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": HELM_CONFIG, **config_desc},
            "layers": [{"mediaType": HELM_CHART_LAYER, **layer_desc}],
            "annotations": annotations,
        }
        return _put_manifest(client, repo, version.replace("+", "_"), manifest)


def _tiny_layer(tag: str) -> bytes:
    """A reproducible gzipped tar holding ``/VERSION`` with ``tag``."""
    data = f"{tag}\n".encode()
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("VERSION")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def push_image(registry_url: str, repo: str, tag: str) -> str:
    """Push a minimal linux/amd64 image ``repo:tag`` (one file, ``/VERSION``); its digest.

    The sandbox runs no containers (KWOK), but image references in charts should resolve
    to real manifests, and tag listings drive image update detection.
    """
    layer = _tiny_layer(tag)
    diff_id = _digest(gzip.decompress(layer))
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": [f"APP_VERSION={tag}"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }, separators=(",", ":")).encode()
    with _client(registry_url) as client:
        config_desc = push_blob(client, repo, config)
        layer_desc = push_blob(client, repo, layer)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_IMAGE_CONFIG, **config_desc},
            "layers": [{"mediaType": OCI_LAYER, **layer_desc}],
        }
        return _put_manifest(client, repo, tag, manifest)


def delete_tag(registry_url: str, repo: str, tag: str) -> None:
    """Delete the manifest ``repo:tag`` points to (the registry then no longer lists the
    tag). Only for manifests that no other tag shares: the registry deletes by digest."""
    with _client(registry_url) as client:
        head = _check(client.head(f"/v2/{repo}/manifests/{tag}",
                                  headers={"Accept": OCI_MANIFEST}), f"manifest {repo}:{tag}")
        digest = head.headers.get("Docker-Content-Digest")
        if not digest:
            raise SandboxError(f"registry named no digest for {repo}:{tag}")
        _check(client.delete(f"/v2/{repo}/manifests/{digest}"), f"deleting {repo}:{tag}")


def push_demo_artifacts(
    registry_url: str, packages: Sequence[ChartPackage]
) -> dict[str, str]:
    """Push every demo chart package and an image tagged with each appVersion.

    Charts go to ``charts/demo-app``, images to ``images/demo-app``, where the seeded
    fleet points. Returns chart version → manifest digest.
    """
    digests = {}
    for pkg in packages:
        digests[pkg.version] = push_chart(registry_url, DEMO_CHART_REPO, pkg.path, pkg.version)
        push_image(registry_url, DEMO_IMAGE_REPO, pkg.app_version)
    return digests
