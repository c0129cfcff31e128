"""The Helm chart keeps exact copies of manifests/ RBAC, webhook configurations, alert
rules and CRDs (manifests/chart/files/SOURCES), so both install paths grant the same
permissions. tests/integration/test_chart.py renders the chart with a real Helm."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "manifests" / "chart"


def sources() -> list[tuple[str, str]]:
    lines = (CHART / "files" / "SOURCES").read_text().splitlines()
    return [tuple(line.split()) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]


@pytest.mark.parametrize(("copy", "source"), sources())
def test_copy_equals_manifest(copy: str, source: str) -> None:
    assert (REPO / copy).read_bytes() == (REPO / source).read_bytes(), (
        f"{copy} differs from {source}: run `make chart-sync` and commit the result")


def test_every_crd_and_rbac_file_is_copied() -> None:
    copied = {source for _, source in sources()}
    assert {f"crds/{p.name}" for p in (REPO / "crds").glob("fluxup.dev_*.yaml")} <= copied
    rbac = {str(p.relative_to(REPO)) for p in (REPO / "manifests").rglob("*.yaml")
            if "chart" not in p.parts
            and any(isinstance(d, dict) and d.get("kind") in ("ClusterRole", "Role")
                    for d in yaml.safe_load_all(p.read_text()))}
    assert rbac <= copied, rbac - copied


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    pyproject = (REPO / "pyproject.toml").read_text()
    assert chart["apiVersion"] == "v2"
    assert f'version = "{chart["appVersion"]}"' in pyproject
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for key in ("git", "ui", "notifications", "metrics", "networkPolicy", "operator", "webhook"):
        assert key in values
    assert values["ui"]["oidc"]["enabled"] is False
    assert values["metrics"]["serviceMonitor"]["enabled"] is False
