"""The ManagedApp reconciler against the in-memory API server: its timer re-derives
"held but no live request" and fixes it (a missed event or a failed call never strands a
hold), audits bypasses, and tells the user when a hold's request has ended."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest

from fluxup.adapters.kube import R
from fluxup.api import annotations as ann
from fluxup.errors import KubeError
from fluxup.logic.bypass import build_binding
from fluxup.logic.hold_requests import build_hold_request_name
from fluxup.logic.identity import GatedKind, Identity, build_approval, determine_desired
from fluxup.reconcile.bypass import BYPASS_RECORDED, record_bypass
from fluxup.reconcile.holds import ensure_request_for_hold
from fluxup.reconcile.managedapp import reconcile_managedapp
from tests.reconcile.world import APP, NS, World

HOLD_NAME = build_hold_request_name(APP, Identity(chart="1.1.0"))


@pytest.fixture
def world() -> World:
    w = World()
    w.seed()
    return w


async def reconcile(world: World) -> None:
    await reconcile_managedapp(world.ctx, world.get(R.MANAGEDAPP, APP))


def requests(world: World) -> list[str]:
    return [r["metadata"]["name"] for r in world.kube.all(R.UPGRADEREQUEST, NS)]


def held_condition(world: World) -> dict[str, str]:
    status = world.get(R.MANAGEDAPP, APP)["status"]
    return next(c for c in status["conditions"] if c["type"] == "Held")


def events(world: World, reason: str) -> list[str]:
    return [e["message"] for e in world.kube.all(R.EVENT) if e["reason"] == reason]


async def test_the_timer_creates_the_request_a_failed_watch_reaction_missed(
    world: World,
) -> None:
    world.gate_holds("1.1.0")
    world.kube.fail("create", KubeError("create upgraderequests: connection reset"))
    with pytest.raises(KubeError):  # the watch reaction fails; kopf does not retry events
        await ensure_request_for_hold(world.ctx, world.get(R.HELMRELEASE, APP))
    assert requests(world) == []
    await reconcile(world)  # the next timer tick
    assert requests(world) == [HOLD_NAME]
    ur = world.get(R.UPGRADEREQUEST, HOLD_NAME)
    assert ur["spec"] == {"managedAppRef": {"name": APP}, "origin": "git",
                          "targetVersion": "1.1.0"}
    assert len(events(world, "HoldDetected")) == 1
    await reconcile(world)
    assert requests(world) == [HOLD_NAME]  # never a second one
    assert len(events(world, "HoldDetected")) == 1
    assert held_condition(world)["message"] == "holding HelmRelease 1.1.0"


async def test_a_suspended_app_starts_nothing(world: World) -> None:
    app = world.get(R.MANAGEDAPP, APP)
    app["spec"]["suspend"] = True
    world.kube.put(R.MANAGEDAPP, app)
    world.gate_holds("1.1.0")
    await reconcile(world)
    assert requests(world) == []


async def test_a_hold_whose_request_failed_is_not_rerun(world: World) -> None:
    world.gate_holds("1.1.0")
    world.request("ui-1", targetVersion="1.1.0", origin="ui")
    ur = world.get(R.UPGRADEREQUEST, "ui-1")
    ur["status"] = {"phase": "Failed", "message": "snapshot failed: quota",
                    "gitCommit": "abc123"}
    world.kube.put(R.UPGRADEREQUEST, ur)
    await reconcile(world)
    assert requests(world) == ["ui-1"]
    message = held_condition(world)["message"]
    assert message.startswith("holding HelmRelease 1.1.0; UpgradeRequest ui-1 for 1.1.0 "
                              "failed (snapshot failed: quota)")
    assert "create a new UpgradeRequest to try again" in message
    world.request("ui-2", targetVersion="1.1.0", origin="ui")  # the user retries
    await reconcile(world)
    assert requests(world) == ["ui-1", "ui-2"]
    assert held_condition(world)["message"] == "holding HelmRelease 1.1.0"


def approve(world: World, request: str) -> None:
    """What the request ``request`` writes once its snapshots are ready."""
    hr = world.get(R.HELMRELEASE, APP)
    notes = hr["metadata"]["annotations"]
    notes[ann.APPROVED] = build_approval(notes[ann.HELD], f"UpgradeRequest/{NS}/{request}")
    world.kube.put(R.HELMRELEASE, hr)


async def test_an_approved_hold_needs_no_request(world: World) -> None:
    world.gate_holds("1.1.0")
    world.request("releasing", targetVersion="1.1.0")
    approve(world, "releasing")
    await reconcile(world)
    assert requests(world) == ["releasing"]
    assert ann.APPROVED in world.get(R.HELMRELEASE, APP)["metadata"]["annotations"]


@pytest.mark.parametrize("end", ["Succeeded", "Failed", "deleting", "gone", "unbound"])
async def test_an_approval_never_outlives_its_request(world: World, end: str) -> None:
    """Whatever way the request ended (or if the approval names none), the timer removes
    the approval, and what it covered is held again: a new request (new snapshots), or —
    for a request that failed — the one action of trying again (see the tests above)."""
    world.gate_holds("1.1.0")
    ur = world.request("ended", targetVersion="1.1.0")
    approve(world, "ended")
    if end in ("Succeeded", "Failed"):
        ur["status"] = {"phase": end}
        world.kube.put(R.UPGRADEREQUEST, ur)
    elif end == "deleting":
        ur["metadata"]["finalizers"] = ["fluxup.dev/upgrade"]
        world.kube.put(R.UPGRADEREQUEST, ur)
        await world.kube.delete(R.UPGRADEREQUEST, NS, "ended")
    elif end == "gone":
        await world.kube.delete(R.UPGRADEREQUEST, NS, "ended")
    else:
        hr = world.get(R.HELMRELEASE, APP)
        notes = hr["metadata"]["annotations"]
        notes[ann.APPROVED] = notes[ann.HELD]  # a bare identity, as written before binding
        world.kube.put(R.HELMRELEASE, hr)
    await reconcile(world)
    assert ann.APPROVED not in world.get(R.HELMRELEASE, APP)["metadata"]["annotations"]
    await reconcile(world)
    assert held_condition(world)["status"] == "True"  # held again, not approved
    if end == "gone":
        assert HOLD_NAME in requests(world)  # a new request (new snapshots) handles it


async def test_line_two_approval_never_outlives_its_request(world: World) -> None:
    await reconcile(world)  # records the release gate
    app = world.get(R.MANAGEDAPP, APP)
    app["metadata"]["annotations"][ann.RELEASE_APPROVED] = json.dumps(
        {"identity": {"chart": "web", "version": "1.1.0", "images": {}},
         "request": f"UpgradeRequest/{NS}/gone"})
    world.kube.put(R.MANAGEDAPP, app)
    await reconcile(world)
    assert ann.RELEASE_APPROVED not in world.get(R.MANAGEDAPP, APP)["metadata"]["annotations"]


async def test_a_bypass_is_audited_once_by_the_timer(world: World) -> None:
    hr = world.get(R.HELMRELEASE, APP)
    hr["metadata"]["annotations"] = {ann.BYPASS: "INC-7 restore now"}
    world.kube.put(R.HELMRELEASE, hr)
    await reconcile(world)
    await reconcile(world)
    assert len(events(world, "GateBypassed")) == 1
    assert "INC-7 restore now" in events(world, "GateBypassed")[0]
    notes = world.get(R.HELMRELEASE, APP)["metadata"]["annotations"]
    assert notes[BYPASS_RECORDED] == "INC-7 restore now"


async def test_a_bound_bypass_is_audited_then_ended_once_its_version_runs(
    world: World,
) -> None:
    world.gate_holds("1.1.0")
    hr = world.get(R.HELMRELEASE, APP)
    covered = determine_desired(GatedKind.HELM_RELEASE, hr).identity
    notes = hr["metadata"]["annotations"]
    del notes[ann.HELD]  # what the webhook does when the bypass lets 1.1.0 through
    notes[ann.BYPASS] = "INC-9 restore now"
    notes[ann.BYPASSED] = build_binding(covered, used=True)
    hr["spec"]["suspend"] = False
    world.kube.put(R.HELMRELEASE, hr)
    await reconcile(world)
    await reconcile(world)
    assert len(events(world, "GateBypassed")) == 1
    assert "the bypass covers 1.1.0 only" in events(world, "GateBypassed")[0]
    assert ann.BYPASS in world.get(R.HELMRELEASE, APP)["metadata"]["annotations"]
    world.helm_releases("1.1.0")  # helm-controller runs the bypassed version
    await reconcile(world)  # at rest: recorded as released ...
    await reconcile(world)  # ... and the bypass has done its job
    notes = world.get(R.HELMRELEASE, APP)["metadata"]["annotations"]
    assert {ann.BYPASS, ann.BYPASSED, BYPASS_RECORDED}.isdisjoint(notes)
    assert len(events(world, "GateBypassEnded")) == 1
    assert "runs 1.1.0" in events(world, "GateBypassEnded")[0]


async def test_status_is_written_once_per_pass_with_discovery(world: World) -> None:
    before = len([c for c in world.kube.calls if c[:2] == ("merge_patch", "managedapps")])
    await reconcile(world)
    status_writes = [c for c in world.kube.calls if c[:2] == ("merge_patch", "managedapps")]
    # the finalizer and the release-gate annotation (metadata) and one status write
    assert len(status_writes) - before == 3
    await reconcile(world)  # a second pass: the metadata is there, nothing has changed
    again = [c for c in world.kube.calls if c[:2] == ("merge_patch", "managedapps")]
    assert len(again) == len(status_writes)
    world.helm_releases("1.1.0")  # something changes: the next pass writes it, once
    await reconcile(world)
    changed = [c for c in world.kube.calls if c[:2] == ("merge_patch", "managedapps")]
    assert len(changed) - len(again) == 1
    assert world.get(R.MANAGEDAPP, APP)["status"]["currentVersion"] == "1.1.0"
    world.helm_releases("1.0.0")  # back, so the checks below read the first state
    await reconcile(world)
    status = world.get(R.MANAGEDAPP, APP)["status"]
    assert status["currentVersion"] == "1.0.0"
    assert status["observedGeneration"] == 1
    discovered = next(c for c in status["conditions"] if c["type"] == "Discovered")
    assert discovered["reason"] == "KustomizationNotFound"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"


async def test_a_scan_written_meanwhile_keeps_its_conditions(world: World) -> None:
    """``fluxup scan`` runs in another process: its UpdatesChecked/UpdateAvailable, written
    after this pass read the app, survive the pass's status write."""
    stale = world.get(R.MANAGEDAPP, APP)
    app = world.get(R.MANAGEDAPP, APP)
    app["status"]["conditions"] = [*app["status"].get("conditions", []), {
        "type": "UpdatesChecked", "status": "False", "reason": "RenovateFailed",
        "message": "registry down", "lastTransitionTime": "2026-03-01T10:00:00Z"}]
    world.kube.put(R.MANAGEDAPP, app)
    await reconcile_managedapp(world.ctx, stale)
    conditions = {c["type"]: c for c in world.get(R.MANAGEDAPP, APP)["status"]["conditions"]}
    assert conditions["UpdatesChecked"]["message"] == "registry down"
    assert "Ready" in conditions  # and the pass's own conditions are written


async def test_an_explicit_pvc_in_another_namespace_is_found_there(world: World) -> None:
    """``volumeSnapshots.pvcs[].namespace`` is honoured (the webhook allows it only with
    cross-namespace references on): the claim is looked up, and snapshotted, there."""
    world.kube.put(R.PVC, {"metadata": {"name": "shared", "namespace": "storage"},
                           "spec": {"storageClassName": "csi"},
                           "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}})
    world.kube.put(R.STORAGECLASS, {"metadata": {"name": "csi"}, "provisioner": "csi"})
    app = world.get(R.MANAGEDAPP, APP)
    app["spec"]["volumeSnapshots"] = {"pvcs": [{"name": "data-web-0"},
                                               {"name": "shared", "namespace": "storage"}]}
    world.kube.put(R.MANAGEDAPP, app)
    await reconcile(world)
    status = world.get(R.MANAGEDAPP, APP)["status"]
    assert [(p["namespace"], p["name"]) for p in status["pvcs"]] == [
        (NS, "data-web-0"), ("storage", "shared")]
    capable = next(c for c in status["conditions"] if c["type"] == "SnapshotCapable")
    assert capable["status"] == "True", capable

    app["spec"]["volumeSnapshots"] = {"pvcs": [{"name": "gone", "namespace": "storage"}]}
    world.kube.put(R.MANAGEDAPP, app)
    await reconcile(world)
    status = world.get(R.MANAGEDAPP, APP)["status"]
    capable = next(c for c in status["conditions"] if c["type"] == "SnapshotCapable")
    assert (capable["status"], capable["message"]) == ("False",
                                                       "PVC(s) storage/gone not found")
    assert status["pvcs"] == []


def _snapshot_set(world: World, request: str, created: str) -> None:
    world.kube.put(R.SNAPSHOT, {
        "metadata": {"name": f"{request}-data-web-0", "namespace": NS,
                     "creationTimestamp": created,
                     "labels": {"fluxup.dev/managed-app": APP,
                                "fluxup.dev/upgrade-request": request}},
        "spec": {"source": {"persistentVolumeClaimName": "data-web-0"}},
        "status": {"readyToUse": True}})


async def test_max_age_expires_snapshot_sets_without_waiting_for_an_upgrade(
    world: World,
) -> None:
    """``retentionPolicy.maxAge`` is enforced by the ManagedApp's own passes (its timer):
    a set past the age goes even when no upgrade comes; the newest set always stays, and
    so does the set a rollback in flight restores."""
    now = world.clock()
    old = (now - dt.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    older = (now - dt.timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    oldest = (now - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _snapshot_set(world, "newest", old)
    _snapshot_set(world, "restoring", older)
    _snapshot_set(world, "expired", oldest)
    world.kube.put(R.ROLLBACKREQUEST, {
        "metadata": {"name": "undo", "namespace": NS},
        "spec": {"upgradeRequestRef": {"name": "restoring"}},
        "status": {"phase": "RestoringVolumes", "upgradeRequest": "restoring"}})
    await reconcile(world)  # no maxAge: the timer leaves every set alone
    assert len(world.kube.all(R.SNAPSHOT, NS)) == 3

    app = world.get(R.MANAGEDAPP, APP)
    app["spec"]["volumeSnapshots"] = {"retentionPolicy": {"keepLast": 5, "maxAge": "168h"}}
    world.kube.put(R.MANAGEDAPP, app)
    await reconcile(world)
    left = sorted(s["metadata"]["name"] for s in world.kube.all(R.SNAPSHOT, NS))
    assert left == ["newest-data-web-0", "restoring-data-web-0"]


async def test_a_bypass_is_audited_once_when_the_watch_and_the_timer_race(
    world: World,
) -> None:
    """The HelmRelease watch and the ManagedApp timer both hand ``record_bypass`` a copy
    read before either audited (seen on the sandbox: two GateBypassed Events in one
    second); the second decides from the object as it is now and audits nothing."""
    hr = world.get(R.HELMRELEASE, APP)
    hr["metadata"]["annotations"] = {ann.BYPASS: "INC-7 restore now"}
    world.kube.put(R.HELMRELEASE, hr)
    stale = world.get(R.HELMRELEASE, APP)
    ctx = world.ctx
    first, second = await asyncio.gather(record_bypass(ctx, stale), record_bypass(ctx, stale))
    assert (first, second) == (True, False)
    assert await record_bypass(ctx, stale) is False  # and any later stale copy
    assert len(events(world, "GateBypassed")) == 1


def _serve_chart_from_oci(world: World, tag: str, fetched: str, **spec: Any) -> None:
    """Re-point the app's HelmRelease at an OCIRepository pinned to ``tag`` whose last
    fetched artifact is ``fetched``, Ready at its generation."""
    world.kube.put(R.OCIREPOSITORY, {
        "metadata": {"name": APP, "namespace": NS, "generation": 1},
        "spec": {"url": "oci://registry.example/charts/web", "ref": {"tag": tag}, **spec},
        "status": {"observedGeneration": 1,
                   "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded"}],
                   "artifact": {"revision": f"{fetched}@sha256:{'2' * 64}"}},
    })
    hr = world.get(R.HELMRELEASE, APP)
    del hr["spec"]["chart"]
    hr["spec"]["chartRef"] = {"kind": "OCIRepository", "name": APP}
    world.kube.put(R.HELMRELEASE, hr)


async def test_an_oci_source_at_rest_is_recorded_as_released(world: World) -> None:
    """The gate must not take a source whose ``status.artifact`` is gone for a first
    install: the operator records the tag it serves at rest, as it does for releases."""
    _serve_chart_from_oci(world, "1.0.0", fetched="1.0.0")
    await reconcile(world)
    oci = world.get(R.OCIREPOSITORY, APP)
    assert oci["metadata"]["labels"][ann.MANAGED_APP_LABEL] == APP
    released = json.loads(oci["metadata"]["annotations"][ann.RELEASED])
    assert released["chart"] == "1.0.0"
    assert released["source"] == determine_desired(GatedKind.OCI_REPOSITORY, oci).identity.source


@pytest.mark.parametrize("state", ["fetching", "held", "suspended"])
async def test_an_oci_source_not_at_rest_records_nothing(world: World, state: str) -> None:
    _serve_chart_from_oci(world, "1.1.0", fetched="1.0.0" if state == "fetching" else "1.1.0",
                          **({"suspend": True} if state == "suspended" else {}))
    if state == "held":
        world.gate_holds("1.1.0", res=R.OCIREPOSITORY)
        oci = world.get(R.OCIREPOSITORY, APP)
        oci["spec"]["suspend"] = False  # held, whatever suspend says
        world.kube.put(R.OCIREPOSITORY, oci)
    await reconcile(world)
    notes = world.get(R.OCIREPOSITORY, APP)["metadata"].get("annotations") or {}
    assert ann.RELEASED not in notes
