"""Deleting a ManagedApp lets go of the app (DESIGN.md §2, rule 5), on the in-memory API
server: labels and annotations removed, the gate's hold released, line 2 no longer finds
the app, an in-flight request ends first and gives back what it holds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fluxup.adapters.kube import R
from fluxup.api import annotations as ann
from fluxup.logic.letgo import APP_FINALIZER
from fluxup.reconcile.managedapp import reconcile_managedapp
from fluxup.reconcile.upgrade import reconcile_upgrade
from tests.reconcile.world import APP, NS, World, chart_repo


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async for url in chart_repo():
        w = World(repo_url=url)
        w.seed()
        yield w


async def reconcile(world: World) -> None:
    obj = world.kube.peek(R.MANAGEDAPP, NS, APP)
    if obj is not None:
        await reconcile_managedapp(world.ctx, obj)


async def test_a_live_app_keeps_the_finalizer(world: World) -> None:
    await reconcile(world)
    assert APP_FINALIZER in world.get(R.MANAGEDAPP, APP)["metadata"]["finalizers"]


async def test_deleting_a_held_app_releases_the_hold_and_removes_fluxups_marks(
    world: World,
) -> None:
    await reconcile(world)  # labels the release, records it for line 2
    assert ann.RELEASE_GATE in world.get(R.MANAGEDAPP, APP)["metadata"]["annotations"]
    assert ann.RELEASE_RECORDS_NAMESPACE_LABEL in world.get(
        R.NAMESPACE, NS, None)["metadata"]["labels"]
    world.gate_holds("1.1.0")
    hr = world.get(R.HELMRELEASE, APP)
    assert hr["spec"]["suspend"] is True
    app = world.get(R.MANAGEDAPP, APP)
    app["spec"]["suspend"] = True  # no request gets created: nobody would release it
    world.kube.put(R.MANAGEDAPP, app)
    await reconcile(world)

    await world.kube.delete(R.MANAGEDAPP, NS, APP)
    await reconcile(world)
    assert world.kube.peek(R.MANAGEDAPP, NS, APP) is None  # the finalizer let it go
    hr = world.get(R.HELMRELEASE, APP)
    assert hr["spec"]["suspend"] is False  # nothing stays held with nobody to release it
    assert ann.MANAGED_APP_LABEL not in hr["metadata"]["labels"]
    notes = hr["metadata"].get("annotations") or {}
    assert {ann.HELD, ann.HELD_SINCE, ann.IMAGE_PATHS, ann.RELEASED}.isdisjoint(notes)
    assert ann.RELEASE_RECORDS_NAMESPACE_LABEL not in (
        world.get(R.NAMESPACE, NS, None)["metadata"].get("labels") or {})
    unmanaged = [e for e in world.kube.all(R.EVENT) if e["reason"] == "Unmanaged"]
    assert len(unmanaged) == 1
    assert "released from its hold" in unmanaged[0]["message"]


async def test_a_release_suspended_by_a_person_stays_suspended(world: World) -> None:
    await reconcile(world)
    hr = world.get(R.HELMRELEASE, APP)
    hr["spec"]["suspend"] = True  # flux suspend, no hold
    world.kube.put(R.HELMRELEASE, hr)
    await world.kube.delete(R.MANAGEDAPP, NS, APP)
    await reconcile(world)
    assert world.kube.peek(R.MANAGEDAPP, NS, APP) is None
    hr = world.get(R.HELMRELEASE, APP)
    assert hr["spec"]["suspend"] is True
    assert ann.MANAGED_APP_LABEL not in hr["metadata"]["labels"]


async def test_an_in_flight_request_ends_first_and_gives_back_what_it_holds(
    world: World,
) -> None:
    app = world.get(R.MANAGEDAPP, APP)  # seeded with the status discovery would write
    app["metadata"]["finalizers"] = [APP_FINALIZER]
    world.kube.put(R.MANAGEDAPP, app)
    world.gate_holds("1.1.0")
    world.request("busy", targetVersion="1.1.0", origin="git")
    for _ in range(4):
        await reconcile_upgrade(world.ctx, world.get(R.UPGRADEREQUEST, "busy"))
    assert world.phase("busy") == "Snapshotting"
    await world.kube.delete(R.MANAGEDAPP, NS, APP)
    await reconcile(world)
    assert world.kube.peek(R.MANAGEDAPP, NS, APP) is not None  # waits for the request
    assert world.get(R.HELMRELEASE, APP)["spec"]["suspend"] is True
    await reconcile_upgrade(world.ctx, world.get(R.UPGRADEREQUEST, "busy"))
    ur = world.get(R.UPGRADEREQUEST, "busy")
    assert ur["status"]["phase"] == "Failed"
    assert "is being deleted" in ur["status"]["message"]
    await reconcile(world)
    assert world.kube.peek(R.MANAGEDAPP, NS, APP) is None
    hr = world.get(R.HELMRELEASE, APP)
    assert hr["spec"]["suspend"] is False
    assert ann.MANAGED_APP_LABEL not in hr["metadata"]["labels"]


async def test_a_shared_chart_source_labelled_for_another_app_is_left_alone(
    world: World,
) -> None:
    world.kube.put(R.OCIREPOSITORY, {
        "metadata": {"name": "shared", "namespace": NS,
                     "labels": {ann.MANAGED_APP_LABEL: "db"},
                     "annotations": {ann.HELD: "{}"}},
        "spec": {"suspend": True, "url": "oci://r/app", "ref": {"tag": "1.1.0"}}})
    app = world.get(R.MANAGEDAPP, APP)
    app["status"]["chartSource"] = {"kind": "OCIRepository", "name": "shared",
                                    "namespace": NS}
    app["metadata"]["finalizers"] = [APP_FINALIZER]
    world.kube.put(R.MANAGEDAPP, app)
    await world.kube.delete(R.MANAGEDAPP, NS, APP)
    await reconcile(world)
    assert world.kube.peek(R.MANAGEDAPP, NS, APP) is None
    oci = world.get(R.OCIREPOSITORY, "shared")
    assert oci["metadata"]["labels"][ann.MANAGED_APP_LABEL] == "db"
    assert oci["spec"]["suspend"] is True
