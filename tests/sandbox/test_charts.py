"""The demo chart packages and the HTTP Helm repository that serves them."""

from __future__ import annotations

import hashlib
import io
import secrets
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fluxup.errors import SandboxError
from fluxup.sandbox.charts import (
    CHART_SOURCE,
    DEMO_VERSIONS,
    build_chart_package,
    package_demo_charts,
    publish_chart,
    read_chart_metadata,
    start_chart_repo,
    unpublish_chart,
)
from fluxup.sandbox.processes import stop_process


@pytest.fixture(scope="module")
def chart_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("charts")
    token = secrets.token_hex(6)
    pid, url = start_chart_repo(base / "repo", token, base / "logs")
    yield url
    assert stop_process(pid, token)


def _load(tar: tarfile.TarFile, name: str) -> Any:
    member = tar.extractfile(name)
    assert member is not None
    return yaml.safe_load(member.read())


def test_package_has_helm_layout_and_rewritten_versions(tmp_path: Path) -> None:
    pkg = build_chart_package(CHART_SOURCE, "1.2.0", tmp_path)
    assert pkg.path == tmp_path / "demo-app-1.2.0.tgz"
    with tarfile.open(pkg.path, "r:gz") as tar:
        names = set(tar.getnames())
        chart = _load(tar, "demo-app/Chart.yaml")
        values = _load(tar, "demo-app/values.yaml")
    assert {
        "demo-app/Chart.yaml", "demo-app/values.yaml", "demo-app/templates/_helpers.tpl",
        "demo-app/templates/statefulset.yaml", "demo-app/templates/deployment.yaml",
        "demo-app/templates/pvc.yaml", "demo-app/templates/service.yaml",
    } <= names
    assert all(n.startswith("demo-app/") for n in names)
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "demo-app"
    assert (chart["version"], chart["appVersion"]) == ("1.2.0", "1.2.0")
    assert set(values["image"]) == {"repository", "tag", "pullPolicy"}
    assert values["image"]["tag"] == ""
    assert values["persistence"]["storageClass"] == ""
    assert read_chart_metadata(pkg.path)["version"] == "1.2.0"
    assert pkg.digest == hashlib.sha256(pkg.path.read_bytes()).hexdigest()


def test_packages_are_reproducible_and_distinct_per_version(tmp_path: Path) -> None:
    first = package_demo_charts(tmp_path / "a")
    again = package_demo_charts(tmp_path / "b")
    assert [p.digest for p in first] == [p.digest for p in again]
    assert len({p.digest for p in first}) == len(DEMO_VERSIONS)


def test_templates_define_both_volume_kinds() -> None:
    statefulset = (CHART_SOURCE / "templates" / "statefulset.yaml").read_text()
    pvc = (CHART_SOURCE / "templates" / "pvc.yaml").read_text()
    deployment = (CHART_SOURCE / "templates" / "deployment.yaml").read_text()
    assert "kind: StatefulSet" in statefulset
    assert "volumeClaimTemplates:" in statefulset
    assert "kind: PersistentVolumeClaim" in pvc
    assert "claimName: {{ include \"demo-app.fullname\" . }}-web-data" in deployment
    assert "{{ include \"demo-app.fullname\" . }}-web-data" in pvc


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "latest"])
def test_non_semver_versions_are_refused(tmp_path: Path, version: str) -> None:
    with pytest.raises(SandboxError, match="not semantic"):
        build_chart_package(CHART_SOURCE, version, tmp_path)


def test_repository_serves_index_and_packages(chart_repo: str) -> None:
    with httpx.Client(base_url=chart_repo, trust_env=False) as client:
        resp = client.get("/index.yaml")
        assert resp.status_code == 200
        index = yaml.safe_load(resp.text)
        assert index["apiVersion"] == "v1"
        entries = index["entries"]["demo-app"]
        assert [e["version"] for e in entries] == sorted(
            DEMO_VERSIONS, key=lambda v: tuple(int(x) for x in v.split(".")), reverse=True
        )
        for entry in entries:
            assert entry["appVersion"] == entry["version"]
            assert entry["name"] == "demo-app"
            assert entry["created"]
            (url,) = entry["urls"]
            assert url == f"{chart_repo}/demo-app-{entry['version']}.tgz"
            tgz = client.get(url)
            assert tgz.status_code == 200
            assert hashlib.sha256(tgz.content).hexdigest() == entry["digest"]
            with tarfile.open(fileobj=io.BytesIO(tgz.content), mode="r:gz") as tar:
                meta = _load(tar, "demo-app/Chart.yaml")
            assert meta["version"] == entry["version"]


def test_publish_and_unpublish_rewrite_the_index(tmp_path: Path) -> None:
    url = "http://127.0.0.1:18080"
    package_demo_charts(tmp_path, ["1.0.0", "1.1.0"])
    package = publish_chart(tmp_path, url, "1.0.1")
    entries = yaml.safe_load((tmp_path / "index.yaml").read_text())["entries"]["demo-app"]
    assert [e["version"] for e in entries] == ["1.1.0", "1.0.1", "1.0.0"]
    (patch,) = [e for e in entries if e["version"] == "1.0.1"]
    assert patch["digest"] == package.digest
    assert patch["urls"] == [f"{url}/demo-app-1.0.1.tgz"]
    unpublish_chart(tmp_path, url, "1.0.1")
    entries = yaml.safe_load((tmp_path / "index.yaml").read_text())["entries"]["demo-app"]
    assert [e["version"] for e in entries] == ["1.1.0", "1.0.0"]
    assert not (tmp_path / "demo-app-1.0.1.tgz").exists()
    with pytest.raises(SandboxError, match="not published"):
        unpublish_chart(tmp_path, url, "1.0.1")
