"""autoUpdate inside a maintenance window, started by the ManagedApp timer when it opens.

On the in-memory cluster: a scan (``ingest_report``) outside the window starts nothing;
the ManagedApp's timer pass (``reconcile_managedapp``) starts the same request once the
window is open, and never a second one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fluxup.adapters.kube import R
from fluxup.api.managedapp import ManagedApp
from fluxup.api.meta import Identity
from fluxup.logic.renovate_report import Dep, RepositoryReport, Update
from fluxup.logic.version_policy import ScanOutcome
from fluxup.reconcile.auto_update import build_auto_request_name, ensure_due_auto_upgrade
from fluxup.reconcile.managedapp import reconcile_managedapp
from fluxup.reconcile.renovate import ingest_report
from tests.reconcile.world import APP, NS, World

URL = "http://git.example/fleet.git"
FILE = "apps/web/helmrelease.yaml"
# the world's clock starts on Sunday 2026-03-01 10:00 UTC
NIGHTLY = {"start": "02:00", "end": "04:00", "timeZone": "Europe/Berlin"}
PATCH_NAME = build_auto_request_name(APP, Identity(version="1.0.1"))


def _world(policy: dict[str, Any]) -> World:
    world = World()
    world.seed({"versionPolicy": policy})
    app = world.get(R.MANAGEDAPP, APP)
    app["status"]["git"] = {"repositoryUrl": URL, "file": FILE}
    app["status"]["helmRelease"]["chartName"] = "web"
    world.kube.put(R.MANAGEDAPP, app)
    return world


async def _scan(world: World, *versions: tuple[str, str]) -> None:
    dep = Dep("flux", FILE, "web", "web", "helm", "1.0.0", "1.0.0",
              updates=tuple(Update(v, v, t) for v, t in versions))
    await ingest_report(world.ctx, RepositoryReport("local", (dep,)), ScanOutcome(True),
                        repository_url=URL)


def _requests(world: World) -> list[str]:
    return [r["metadata"]["name"] for r in world.kube.all(R.UPGRADEREQUEST, NS)]


async def _timer(world: World) -> None:
    await reconcile_managedapp(world.ctx, world.get(R.MANAGEDAPP, APP))


async def test_outside_the_window_nothing_starts_until_it_opens() -> None:
    world = _world({"chart": {"autoUpdate": "patch"}, "maintenanceWindow": NIGHTLY})
    await _scan(world, ("1.0.1", "patch"), ("1.1.0", "minor"))
    assert _requests(world) == []
    condition = {c["type"]: c for c in world.get(R.MANAGEDAPP, APP)["status"]["conditions"]}
    assert "in the maintenance window (daily 02:00-04:00 Europe/Berlin)" in (
        condition["UpdateAvailable"]["message"])
    await _timer(world)  # 11:00 in Berlin: still closed
    assert _requests(world) == []
    world.clock.now = dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC)  # 02:30 in Berlin
    await _timer(world)
    assert _requests(world) == [PATCH_NAME]
    (request,) = world.kube.all(R.UPGRADEREQUEST, NS)
    assert request["spec"] == {"managedAppRef": {"name": APP}, "origin": "renovate",
                               "targetVersion": "1.0.1"}
    await _timer(world)
    await _scan(world, ("1.0.1", "patch"), ("1.1.0", "minor"))
    assert _requests(world) == [PATCH_NAME]


async def test_inside_the_window_the_scan_starts_it() -> None:
    world = _world({"chart": {"autoUpdate": "patch"},
                    "maintenanceWindow": {"days": ["Sun"], "start": "09:00", "end": "12:00"}})
    await _scan(world, ("1.0.1", "patch"))
    assert _requests(world) == [PATCH_NAME]


async def test_held_back_by_a_request_in_flight_then_started_by_the_timer() -> None:
    world = _world({"chart": {"autoUpdate": "patch"}})
    world.request("manual", targetVersion="1.0.0")
    await _scan(world, ("1.0.1", "patch"))
    await _timer(world)
    assert _requests(world) == ["manual"]  # never two at once
    done = world.get(R.UPGRADEREQUEST, "manual")
    done["status"] = {"phase": "Failed"}
    world.kube.put(R.UPGRADEREQUEST, done)
    await _timer(world)
    assert sorted(_requests(world)) == sorted(["manual", PATCH_NAME])


async def test_the_timer_starts_nothing_the_app_already_runs_or_may_not_start() -> None:
    world = _world({"chart": {"autoUpdate": "patch"}})
    world.request("manual", targetVersion="1.0.1")
    await _scan(world, ("1.0.1", "patch"))
    # a person upgraded to the candidate meanwhile
    app = world.get(R.MANAGEDAPP, APP)
    app["status"]["currentVersion"] = "1.0.1"
    world.kube.put(R.MANAGEDAPP, app)
    done = world.get(R.UPGRADEREQUEST, "manual")
    done["status"] = {"phase": "Succeeded"}
    world.kube.put(R.UPGRADEREQUEST, done)
    assert await ensure_due_auto_upgrade(world.ctx, ManagedApp.from_dict(
        world.get(R.MANAGEDAPP, APP))) is None
    # no autoUpdate level, or suspended: never
    for spec in ({"versionPolicy": {"chart": {"autoUpdate": "none"}}},
                 {"suspend": True, "versionPolicy": {"chart": {"autoUpdate": "patch"}}}):
        app = world.get(R.MANAGEDAPP, APP)
        app["status"]["currentVersion"] = "1.0.0"
        app["spec"].update(spec)
        world.kube.put(R.MANAGEDAPP, app)
        assert await ensure_due_auto_upgrade(world.ctx, ManagedApp.from_dict(app)) is None
    assert _requests(world) == ["manual"]
    # the same app, allowed again, does start: the two refusals above were the rules
    app["spec"].update({"suspend": False})
    world.kube.put(R.MANAGEDAPP, app)
    assert await ensure_due_auto_upgrade(world.ctx, ManagedApp.from_dict(app)) == PATCH_NAME


async def test_unknown_time_zone_never_starts() -> None:
    world = _world({"chart": {"autoUpdate": "patch"},
                    "maintenanceWindow": {"start": "00:00", "end": "23:59",
                                          "timeZone": "Nowhere/Atlantis"}})
    await _scan(world, ("1.0.1", "patch"))
    await _timer(world)
    assert _requests(world) == []
    condition = {c["type"]: c for c in world.get(R.MANAGEDAPP, APP)["status"]["conditions"]}
    assert "not a time zone this system knows" in condition["UpdateAvailable"]["message"]
