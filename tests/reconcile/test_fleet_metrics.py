"""The fleet gauges refreshed before a scrape: what is read, how often, and on failure.

:func:`~fluxup.logic.fleet_state.build_fleet_state` is tested in tests/logic; here the
:class:`~fluxup.reconcile.fleet_metrics.FleetRefresher` around it, against the in-memory
API server, read back from the rendered /metrics text.
"""

from __future__ import annotations

from fluxup.adapters.kube import R
from fluxup.adapters.metrics import OperatorMetrics
from fluxup.api import annotations as ann
from fluxup.errors import KubeError
from fluxup.logic.snapshots import REQUEST_LABEL
from fluxup.reconcile.fleet_metrics import FleetRefresher
from tests.adapters.test_metrics import samples
from tests.memkube import MemoryKube

NS = "apps"


def gauges(metrics: OperatorMetrics) -> dict[str, float]:
    """The fleet gauges without labels, and the refresh error count, by name."""
    got = samples(metrics.render().decode())
    return {
        name: got.get((name, ()), 0.0)
        for name in ("fluxup_managed_apps", "fluxup_releases_held",
                     "fluxup_metrics_refresh_errors_total")
    }


def put_app(kube: MemoryKube, name: str) -> None:
    kube.put(R.MANAGEDAPP, {"metadata": {"namespace": NS, "name": name}})


def fleet() -> MemoryKube:
    """Two apps; of two held HelmReleases one is labelled with its app; one snapshot of
    the ``web`` app's request, one VolumeSnapshot that is not FluxUp's."""
    kube = MemoryKube()
    put_app(kube, "web")
    put_app(kube, "db")
    held = {ann.HELD: "true", ann.HELD_SINCE: "2026-03-01T10:00:00Z"}
    kube.put(R.HELMRELEASE, {"metadata": {
        "namespace": NS, "name": "web", "annotations": held,
        "labels": {ann.MANAGED_APP_LABEL: "web"},
    }})
    kube.put(R.HELMRELEASE, {"metadata": {"namespace": NS, "name": "other", "annotations": held}})
    kube.put(R.SNAPSHOT, {"metadata": {
        "namespace": NS, "name": "web-up-1-data",
        "creationTimestamp": "2026-03-01T10:05:00Z",
        "labels": {ann.MANAGED_APP_LABEL: "web", REQUEST_LABEL: "web-up-1"},
    }})
    kube.put(R.SNAPSHOT, {"metadata": {"namespace": NS, "name": "manual"}})
    return kube


async def test_refresh_reads_the_apps_and_only_fluxups_labelled_objects() -> None:
    metrics = OperatorMetrics()
    await FleetRefresher(fleet(), metrics)()
    assert gauges(metrics) == {
        "fluxup_managed_apps": 2,
        "fluxup_releases_held": 1,  # the unlabelled HelmRelease is not the gate's
        "fluxup_metrics_refresh_errors_total": 0,
    }
    got = samples(metrics.render().decode())
    assert got[("fluxup_snapshot_sets", (("app", "web"), ("namespace", NS)))] == 1
    assert {labels for name, labels in got if name == "fluxup_snapshot_sets"} == {
        (("app", "web"), ("namespace", NS))
    }


async def refreshed_then_grown(
    min_interval: float,
) -> tuple[MemoryKube, OperatorMetrics, FleetRefresher]:
    """A refresher that has read :func:`fleet` once; a third app was added since."""
    kube, metrics = fleet(), OperatorMetrics()
    refresher = FleetRefresher(kube, metrics, min_interval=min_interval)
    await refresher()
    put_app(kube, "cache")
    return kube, metrics, refresher


async def test_scrapes_within_min_interval_reuse_the_last_state() -> None:
    kube, metrics, refresher = await refreshed_then_grown(min_interval=3600)
    reads = len(kube.calls)
    await refresher()
    assert len(kube.calls) == reads
    assert gauges(metrics)["fluxup_managed_apps"] == 2


async def test_each_scrape_reads_again_without_min_interval() -> None:
    _, metrics, refresher = await refreshed_then_grown(min_interval=0)
    await refresher()
    assert gauges(metrics)["fluxup_managed_apps"] == 3


async def test_a_failed_read_keeps_the_last_state_and_is_counted() -> None:
    kube, metrics, refresher = await refreshed_then_grown(min_interval=0)
    kube.fail("list", KubeError("list managedapps: HTTP 503"))
    await refresher()
    assert gauges(metrics) == {
        "fluxup_managed_apps": 2,
        "fluxup_releases_held": 1,
        "fluxup_metrics_refresh_errors_total": 1,
    }
    await refresher()  # the next scrape reads again
    assert gauges(metrics)["fluxup_managed_apps"] == 3
