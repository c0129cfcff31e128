"""Ingesting Renovate findings into ManagedApps and starting automatic upgrades.

Runs the reconcile layer on the in-memory Kube (:mod:`tests.memkube`); the real Renovate
on the sandbox is exercised in ``tests/integration/test_renovate_e2e.py``.
"""

from __future__ import annotations

from typing import Any

from fluxup.adapters.kube import R
from fluxup.api.meta import Identity
from fluxup.logic.renovate_report import Dep, RepositoryReport, Update
from fluxup.logic.version_policy import ScanOutcome
from fluxup.reconcile.auto_update import build_auto_request_name
from fluxup.reconcile.renovate import ingest_report
from tests.reconcile.world import APP, NS, World

URL = "http://git.example/fleet.git"
FILE = "apps/web/helmrelease.yaml"


def _world(policy: dict[str, Any] | None = None, suspend: bool = False) -> World:
    world = World()
    world.seed({"versionPolicy": policy or {}, "suspend": suspend})
    app = world.get(R.MANAGEDAPP, APP)
    app["status"]["git"] = {"repositoryUrl": URL, "file": FILE}
    app["status"]["helmRelease"]["chartName"] = "web"
    world.kube.put(R.MANAGEDAPP, app)
    return world


def _report(*versions: tuple[str, str], file: str = FILE) -> RepositoryReport:
    dep = Dep("flux", file, "web", "web", "helm", "1.0.0", "1.0.0",
              registry_urls=("http://charts.example/",),
              updates=tuple(Update(v, v, t) for v, t in versions))
    return RepositoryReport("local", (dep,))


async def _ingest(world: World, report: RepositoryReport,
                  outcome: ScanOutcome | None = None) -> None:
    await ingest_report(world.ctx, report, outcome or ScanOutcome(True), repository_url=URL)


def _status(world: World) -> dict[str, Any]:
    status: dict[str, Any] = world.get(R.MANAGEDAPP, APP)["status"]
    return status


def _conditions(world: World) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in _status(world)["conditions"]}


async def test_findings_become_status_and_conditions() -> None:
    world = _world()
    await _ingest(world, _report(("1.0.1", "patch"), ("1.1.0", "minor")))
    status = _status(world)
    assert [(c["version"], c["type"]) for c in status["availableUpdates"]] == [
        ("1.0.1", "patch"), ("1.1.0", "minor")]
    assert status["availableUpdate"]["version"] == "1.1.0"
    assert status["currentVersion"] == "1.0.0"  # fields of other writers are untouched
    conditions = _conditions(world)
    assert conditions["UpdatesChecked"]["status"] == "True"
    assert conditions["UpdateAvailable"]["reason"] == "NewVersionDetected"
    assert world.kube.all(R.UPGRADEREQUEST) == []  # autoUpdate: none


async def test_updates_no_longer_offered_are_cleared() -> None:
    world = _world()
    await _ingest(world, _report(("1.1.0", "minor")))
    await _ingest(world, _report())
    status = _status(world)
    assert "availableUpdate" not in status
    assert status.get("availableUpdates", []) == []
    assert _conditions(world)["UpdateAvailable"]["reason"] == "UpToDate"


async def test_failed_scan_keeps_updates_and_says_why() -> None:
    world = _world()
    await _ingest(world, _report(("1.1.0", "minor")))
    await _ingest(world, RepositoryReport("local", ()),
                  ScanOutcome(False, "RenovateFailed", "Renovate exited with code 7"))
    status = _status(world)
    assert status["availableUpdate"]["version"] == "1.1.0"
    assert [c["version"] for c in status["availableUpdates"]] == ["1.1.0"]
    checked = _conditions(world)["UpdatesChecked"]
    assert (checked["status"], checked["reason"]) == ("False", "RenovateFailed")
    assert checked["message"] == "Renovate exited with code 7"


async def test_aborted_report_keeps_updates() -> None:
    world = _world()
    await _ingest(world, _report(("1.1.0", "minor")))
    aborted = RepositoryReport("local", (), ("Host error",), True, "aborted: Host error")
    await _ingest(world, aborted)
    assert _status(world)["availableUpdate"]["version"] == "1.1.0"
    assert "aborted: Host error" in _conditions(world)["UpdatesChecked"]["message"]


async def test_report_of_another_repository_changes_nothing() -> None:
    world = _world()
    await ingest_report(world.ctx, _report(("1.1.0", "minor")), ScanOutcome(True),
                        repository_url="http://git.example/other.git")
    assert "availableUpdates" not in _status(world)


async def test_auto_update_patch_starts_one_request_for_the_patch() -> None:
    world = _world({"chart": {"autoUpdate": "patch"}})
    await _ingest(world, _report(("1.0.1", "patch"), ("1.1.0", "minor")))
    (request,) = world.kube.all(R.UPGRADEREQUEST, NS)
    assert request["spec"] == {"managedAppRef": {"name": APP}, "origin": "renovate",
                               "targetVersion": "1.0.1"}
    assert request["metadata"]["labels"]["fluxup.dev/managed-app"] == APP
    # a second scan while it runs, or after it, never makes another for the same target
    await _ingest(world, _report(("1.0.1", "patch"), ("1.1.0", "minor")))
    assert len(world.kube.all(R.UPGRADEREQUEST, NS)) == 1


async def test_minor_candidate_does_not_start_under_patch_policy() -> None:
    world = _world({"chart": {"autoUpdate": "patch"}})
    await _ingest(world, _report(("1.1.0", "minor")))
    assert world.kube.all(R.UPGRADEREQUEST, NS) == []


async def test_never_two_at_once() -> None:
    world = _world({"chart": {"autoUpdate": "minor"}})
    world.request("manual", targetVersion="1.0.1")  # in flight (no phase yet)
    await _ingest(world, _report(("1.1.0", "minor")))
    assert [r["metadata"]["name"] for r in world.kube.all(R.UPGRADEREQUEST, NS)] == ["manual"]
    finished = world.get(R.UPGRADEREQUEST, "manual")
    finished["status"] = {"phase": "Succeeded"}
    world.kube.put(R.UPGRADEREQUEST, finished)
    await _ingest(world, _report(("1.1.0", "minor")))
    names = sorted(r["metadata"]["name"] for r in world.kube.all(R.UPGRADEREQUEST, NS))
    assert names == ["manual", build_auto_request_name(APP, Identity(version="1.1.0"))]


async def test_suspended_app_is_neither_updated_nor_upgraded() -> None:
    world = _world({"chart": {"autoUpdate": "major"}}, suspend=True)
    await _ingest(world, _report(("2.0.0", "major")))
    assert "availableUpdates" not in _status(world)
    assert world.kube.all(R.UPGRADEREQUEST, NS) == []


def test_auto_request_names_are_stable_and_distinct() -> None:
    a = build_auto_request_name("web", Identity(version="1.0.1"))
    assert a == build_auto_request_name("web", Identity(version="1.0.1"))
    assert a != build_auto_request_name("web", Identity(version="1.0.2"))
    assert len(build_auto_request_name("x" * 80, Identity(version="1"))) <= 63


async def test_unreachable_registry_makes_the_summary_incomplete() -> None:
    world = _world()
    await _ingest(world, _report(("1.1.0", "minor")))
    down = Dep("flux", FILE, "web", "web", "helm", "1.0.0", "1.0.0",
               registry_urls=("http://charts.example/",),
               warnings=("Failed to look up helm package web",))
    summary = await ingest_report(world.ctx, RepositoryReport("local", (down,)),
                                  ScanOutcome(True), repository_url=URL)
    assert summary.ok
    assert not summary.complete
    (line,) = summary.unchecked
    assert line.startswith(f"{NS}/{APP}: Renovate could not look up versions at charts.example")
    assert _status(world)["availableUpdate"]["version"] == "1.1.0"  # kept
    healthy = await ingest_report(world.ctx, _report(("1.1.0", "minor")), ScanOutcome(True),
                                  repository_url=URL)
    assert healthy.complete
    assert healthy.unchecked == ()


async def test_a_write_by_the_operator_meanwhile_is_not_overwritten() -> None:
    """The scan decides from a read and writes at its resourceVersion: when the operator's
    reconciler (another process) wrote in between, it reads and decides again."""
    world = _world()
    original = world.kube.merge_patch
    interfered: list[bool] = []

    async def racing(res: Any, namespace: Any, name: str, patch: Any, sub: str = "") -> Any:
        if res is R.MANAGEDAPP and sub == "status" and not interfered:
            interfered.append(True)
            app = world.get(R.MANAGEDAPP, APP)
            app["status"]["conditions"] = [{"type": "Ready", "status": "True",
                                            "reason": "Succeeded", "message": "meanwhile",
                                            "lastTransitionTime": "2026-03-01T10:00:00Z"}]
            world.kube.put(R.MANAGEDAPP, app)
        return await original(res, namespace, name, patch, sub)

    world.kube.merge_patch = racing  # type: ignore[method-assign]
    await _ingest(world, _report(("1.1.0", "minor")))
    assert interfered
    conditions = _conditions(world)
    assert conditions["Ready"]["message"] == "meanwhile"
    assert conditions["UpdatesChecked"]["status"] == "True"
    assert _status(world)["availableUpdate"]["version"] == "1.1.0"
