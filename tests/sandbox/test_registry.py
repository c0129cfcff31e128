"""The sandbox OCI registry (Debian's distribution registry) and Helm chart pushes."""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from fluxup.errors import SandboxError
from fluxup.sandbox.charts import ChartPackage, package_demo_charts
from fluxup.sandbox.processes import stop_process
from fluxup.sandbox.registry import (
    HELM_CHART_LAYER,
    HELM_CONFIG,
    OCI_MANIFEST,
    build_registry_config,
    delete_tag,
    push_chart,
    push_demo_artifacts,
    push_image,
    start_registry,
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("registry")
    token = secrets.token_hex(6)
    pid, port = start_registry(base / "reg", token, base / "logs")
    assert (base / "reg" / "config.yml").exists()
    yield f"http://127.0.0.1:{port}"
    assert stop_process(pid, token)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ChartPackage]:
    out = tmp_path_factory.mktemp("pkgs")
    return {p.version: p for p in package_demo_charts(out, ["1.0.0", "1.1.0"])}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_push_two_chart_versions_and_read_them_back(
    registry: str, packages: dict[str, ChartPackage]
) -> None:
    repo = "charts/demo-app"
    digests = {v: push_chart(registry, repo, p.path, v) for v, p in packages.items()}
    assert len(set(digests.values())) == 2

    with httpx.Client(base_url=registry, trust_env=False) as client:
        tags = client.get(f"/v2/{repo}/tags/list").json()
        assert tags["name"] == repo
        assert sorted(tags["tags"]) == ["1.0.0", "1.1.0"]

        for version, pkg in packages.items():
            resp = client.get(f"/v2/{repo}/manifests/{version}",
                              headers={"Accept": OCI_MANIFEST})
            assert resp.status_code == 200
            assert resp.headers["Content-Type"] == OCI_MANIFEST
            assert resp.headers["Docker-Content-Digest"] == digests[version]
            assert sha256(resp.content) == digests[version]
            manifest = resp.json()
            assert manifest["schemaVersion"] == 2
            assert manifest["mediaType"] == OCI_MANIFEST
            assert manifest["config"]["mediaType"] == HELM_CONFIG
            (layer,) = manifest["layers"]
            assert layer["mediaType"] == HELM_CHART_LAYER
            assert manifest["annotations"]["org.opencontainers.image.version"] == version
            assert manifest["annotations"]["org.opencontainers.image.title"] == "demo-app"

            blob = client.get(f"/v2/{repo}/blobs/{layer['digest']}")
            assert blob.status_code == 200
            assert blob.content == pkg.path.read_bytes()
            assert sha256(blob.content) == layer["digest"] == "sha256:" + pkg.digest
            assert layer["size"] == len(blob.content)

            config = client.get(f"/v2/{repo}/blobs/{manifest['config']['digest']}")
            assert sha256(config.content) == manifest["config"]["digest"]
            meta = json.loads(config.content)
            assert (meta["name"], meta["version"], meta["apiVersion"]) == (
                "demo-app", version, "v2")

        by_digest = client.get(f"/v2/{repo}/manifests/{digests['1.0.0']}",
                               headers={"Accept": OCI_MANIFEST})
        assert by_digest.status_code == 200
        assert sha256(by_digest.content) == digests["1.0.0"]


def test_pushing_again_is_idempotent(
    registry: str, packages: dict[str, ChartPackage]
) -> None:
    repo = "charts/again"
    pkg = packages["1.0.0"]
    fixed = datetime(2026, 1, 1, tzinfo=UTC)
    first = push_chart(registry, repo, pkg.path, "1.0.0", created=fixed)
    assert push_chart(registry, repo, pkg.path, "1.0.0", created=fixed) == first


def test_tag_must_equal_chart_version(
    registry: str, packages: dict[str, ChartPackage]
) -> None:
    with pytest.raises(SandboxError, match=r"not 9\.9\.9"):
        push_chart(registry, "charts/wrong", packages["1.0.0"].path, "9.9.9")
    resp = httpx.get(f"{registry}/v2/charts/wrong/tags/list", trust_env=False)
    assert resp.status_code == 404


def test_push_image_tags(registry: str) -> None:
    digests = [push_image(registry, "images/demo-app", tag) for tag in ("1.0.0", "1.1.0")]
    with httpx.Client(base_url=registry, trust_env=False) as client:
        tags = client.get("/v2/images/demo-app/tags/list").json()["tags"]
        assert sorted(tags) == ["1.0.0", "1.1.0"]
        manifest = client.get("/v2/images/demo-app/manifests/1.1.0",
                              headers={"Accept": OCI_MANIFEST})
        assert sha256(manifest.content) == digests[1]
        layer = manifest.json()["layers"][0]
        data = client.get(f"/v2/images/demo-app/blobs/{layer['digest']}").content
        assert sha256(data) == layer["digest"]
        assert b"1.1.0\n" in gzip.decompress(data)


def test_delete_tag_removes_only_that_tag(registry: str) -> None:
    for tag in ("5.0.0", "5.0.1"):
        push_image(registry, "images/withdrawn", tag)
    delete_tag(registry, "images/withdrawn", "5.0.1")
    with httpx.Client(base_url=registry, trust_env=False) as client:
        assert client.get("/v2/images/withdrawn/tags/list").json()["tags"] == ["5.0.0"]
    with pytest.raises(SandboxError, match="HTTP 404"):
        delete_tag(registry, "images/withdrawn", "5.0.1")


def test_config_is_valid_yaml_with_loopback_address(tmp_path: Path) -> None:
    config = yaml.safe_load(build_registry_config(tmp_path / "s p@ce", 5123, "x"))
    assert config["http"]["addr"] == "127.0.0.1:5123"
    assert config["storage"]["filesystem"]["rootdirectory"] == str(tmp_path / "s p@ce")
    assert "auth" not in config


def test_push_demo_artifacts_fills_both_repositories(
    registry: str, packages: dict[str, ChartPackage]
) -> None:
    digests = push_demo_artifacts(registry, list(packages.values()))
    assert sorted(digests) == ["1.0.0", "1.1.0"]
    with httpx.Client(base_url=registry, trust_env=False) as client:
        for version, digest in digests.items():
            resp = client.get(f"/v2/charts/demo-app/manifests/{version}",
                              headers={"Accept": OCI_MANIFEST})
            assert resp.headers["Docker-Content-Digest"] == digest
            image = client.get(f"/v2/images/demo-app/manifests/{version}",
                               headers={"Accept": OCI_MANIFEST})
            assert image.status_code == 200
            assert image.json()["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
