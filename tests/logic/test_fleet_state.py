"""The fleet state behind the gauges, from plain objects."""

from __future__ import annotations

import datetime as dt

from fluxup.logic.fleet_state import HeldRelease, SnapshotSets, build_fleet_state


def snap(ns: str, app: str, request: str, created: str) -> dict[str, object]:
    return {"metadata": {"namespace": ns, "creationTimestamp": created, "labels": {
        "fluxup.dev/managed-app": app, "fluxup.dev/upgrade-request": request}}}


def test_counts_updates_holds_and_snapshot_sets() -> None:
    apps = [
        {"metadata": {"namespace": "a", "name": "redis"}, "status": {"availableUpdates": [
            {"source": "chart", "type": "minor"}, {"source": "chart", "type": "minor"},
            {"source": "image", "type": "major"}]}},
        {"metadata": {"namespace": "b", "name": "db"}, "status": {}},
    ]
    gated = [
        {"kind": "HelmRelease", "metadata": {
            "namespace": "a", "name": "redis", "labels": {"fluxup.dev/managed-app": "redis"},
            "annotations": {"fluxup.dev/held": "{}",
                            "fluxup.dev/held-since": "2026-01-01T00:00:00Z"}}},
        {"kind": "HelmRelease", "metadata": {"namespace": "b", "name": "db", "annotations": {}}},
    ]
    snaps = [snap("a", "redis", "up-1", "2026-01-01T00:00:00Z"),
             snap("a", "redis", "up-1", "2026-01-01T00:00:05Z"),
             snap("a", "redis", "up-2", "2026-02-01T00:00:00Z"),
             {"metadata": {"namespace": "a", "labels": {}}}]
    state = build_fleet_state(apps, gated, snaps)
    assert state.apps == 2
    assert state.available == {("a", "redis", "chart", "minor"): 2,
                               ("a", "redis", "image", "major"): 1}
    assert state.held == (HeldRelease("HelmRelease", "a", "redis", "redis",
                                      dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),)
    assert state.snapshot_sets == {("a", "redis"): SnapshotSets(
        2, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 2, 1, tzinfo=dt.UTC))}


def test_unreadable_times_are_unknown() -> None:
    gated = [{"kind": "OCIRepository", "metadata": {
        "namespace": "a", "name": "c", "annotations": {"fluxup.dev/held": "x",
                                                       "fluxup.dev/held-since": "soon"}}}]
    assert build_fleet_state([], gated, []).held[0].since is None
