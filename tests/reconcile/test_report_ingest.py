"""Reports in labelled ConfigMaps: ingested once per content, rejected ones recorded.

On the in-memory cluster (:mod:`tests.memkube`); the TokenReview/SubjectAccessReview half
of :mod:`fluxup.reconcile.report_ingest` needs a real API server and is tested on the
sandbox (``tests/integration/test_report_ingest.py``).
"""

from __future__ import annotations

import json
from typing import Any

from fluxup.adapters.kube import R
from fluxup.logic.report_intake import (
    DIGEST_ANNOTATION,
    REPORT_KEY,
    REPORT_LABEL,
    REPOSITORY_ANNOTATION,
    RESULT_ANNOTATION,
)
from fluxup.reconcile.report_ingest import ingest_configmaps
from tests.reconcile.world import APP, World
from tests.test_intake import FILE, URL, report

NS = "fluxup-system"  # Settings().namespace


def _world() -> World:
    world = World()
    world.seed()
    app = world.get(R.MANAGEDAPP, APP)
    app["status"]["git"] = {"repositoryUrl": URL, "file": FILE}
    app["status"]["helmRelease"]["chartName"] = "web"
    world.kube.put(R.MANAGEDAPP, app)
    return world


def _put(world: World, data: dict[str, str], name: str = "renovate",
         labels: dict[str, str] | None = None, **annotations: str) -> None:
    world.kube.put(R.CONFIGMAP, {
        "metadata": {"name": name, "namespace": NS,
                     "labels": {REPORT_LABEL: "true"} if labels is None else labels,
                     "annotations": annotations},
        "data": data})


def _available(world: World) -> Any:
    return (world.get(R.MANAGEDAPP, APP)["status"].get("availableUpdate") or {}).get("version")


def _notes(world: World, name: str = "renovate") -> dict[str, str]:
    notes: dict[str, str] = world.get(R.CONFIGMAP, name, NS)["metadata"]["annotations"]
    return notes


async def test_configmap_report_is_ingested_once_per_content() -> None:
    world = _world()
    _put(world, {REPORT_KEY: json.dumps(report("1.1.0"))})
    (line,) = await ingest_configmaps(world.ctx)
    assert "org/fleet: 1 app(s), 1 candidate(s)" in line
    assert _available(world) == "1.1.0"
    notes = _notes(world)
    assert notes[RESULT_ANNOTATION].startswith("ingested org/fleet")
    assert len(notes[DIGEST_ANNOTATION]) == 64
    reasons = [e["reason"] for e in world.kube.all(R.EVENT, NS)]
    assert reasons == ["ReportIngested"]
    # unchanged content: nothing is ingested again
    patches = [c for c in world.kube.calls if c[0] == "merge_patch"]
    assert await ingest_configmaps(world.ctx) == []
    assert [c for c in world.kube.calls if c[0] == "merge_patch"] == patches
    # new content is
    cm = world.get(R.CONFIGMAP, "renovate", NS)
    cm["data"][REPORT_KEY] = json.dumps(report("1.2.0"))
    world.kube.put(R.CONFIGMAP, cm)
    assert len(await ingest_configmaps(world.ctx)) == 1
    assert _available(world) == "1.2.0"


async def test_local_report_uses_the_repository_annotation() -> None:
    world = _world()
    _put(world, {REPORT_KEY: json.dumps(report("1.1.0", repository="local"))})
    (line,) = await ingest_configmaps(world.ctx)
    assert "rejected" in line
    assert "--platform=local" in line
    assert _available(world) is None
    cm = world.get(R.CONFIGMAP, "renovate", NS)
    cm["metadata"]["annotations"][REPOSITORY_ANNOTATION] = URL
    world.kube.put(R.CONFIGMAP, cm)
    (line,) = await ingest_configmaps(world.ctx)
    assert line.endswith(f"ingested {URL}: 1 app(s), 1 candidate(s)")
    assert _available(world) == "1.1.0"


async def test_rejected_report_changes_nothing_and_is_recorded_once() -> None:
    world = _world()
    _put(world, {REPORT_KEY: json.dumps(report("1.1.0"))})
    await ingest_configmaps(world.ctx)
    hostile = report("1.9.0")
    hostile["repositories"]["org/fleet"]["packageFiles"]["flux"][0]["packageFile"] = "/etc/x"
    cm = world.get(R.CONFIGMAP, "renovate", NS)
    cm["data"][REPORT_KEY] = json.dumps(hostile)
    world.kube.put(R.CONFIGMAP, cm)
    (line,) = await ingest_configmaps(world.ctx)
    assert "rejected: Renovate report rejected at" in line
    assert "nothing was changed" in _notes(world)[RESULT_ANNOTATION]
    assert _available(world) == "1.1.0"
    assert sorted((e["reason"], e["type"]) for e in world.kube.all(R.EVENT, NS)) == [
        ("ReportIngested", "Normal"), ("ReportRejected", "Warning")]
    assert await ingest_configmaps(world.ctx) == []


async def test_only_labelled_configmaps_of_the_operator_namespace() -> None:
    world = _world()
    _put(world, {REPORT_KEY: json.dumps(report("1.1.0"))}, name="other", labels={})
    world.kube.put(R.CONFIGMAP, {"metadata": {"name": "elsewhere", "namespace": "apps",
                                              "labels": {REPORT_LABEL: "true"}},
                                 "data": {REPORT_KEY: json.dumps(report("1.1.0"))}})
    assert await ingest_configmaps(world.ctx) == []
    assert _available(world) is None
