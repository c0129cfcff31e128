"""The fleet's state as metrics see it: available updates, held releases, snapshot sets.

Built from plain Kubernetes objects (ManagedApps, the managed HelmReleases and
OCIRepositories, FluxUp's VolumeSnapshots) by :func:`build_fleet_state`; the operator's
metrics collector (:mod:`fluxup.adapters.metrics`) refreshes it when ``/metrics`` is
scraped and renders it as gauges. Deriving these gauges from the objects, not from
counters kept in memory, makes them right after a restart and keeps the reconcilers free
of metric hooks. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fluxup.api import annotations as ann

__all__ = ["FleetState", "HeldRelease", "SnapshotSets", "build_fleet_state"]

_REQUEST_LABEL = "fluxup.dev/upgrade-request"


@dataclass(frozen=True)
class HeldRelease:
    """A HelmRelease or OCIRepository the gate holds now, and since when."""

    kind: str
    namespace: str
    name: str
    app: str
    since: dt.datetime | None


@dataclass(frozen=True)
class SnapshotSets:
    """An app's pre-upgrade snapshot sets: how many, the oldest and newest creation."""

    count: int
    oldest: dt.datetime | None
    newest: dt.datetime | None


@dataclass(frozen=True)
class FleetState:
    """Gauges' values. ``available`` maps (namespace, app, source, type) to a count."""

    apps: int = 0
    available: Mapping[tuple[str, str, str, str], int] = field(default_factory=dict)
    held: tuple[HeldRelease, ...] = ()
    snapshot_sets: Mapping[tuple[str, str], SnapshotSets] = field(default_factory=dict)


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def build_fleet_state(
    apps: Iterable[Mapping[str, Any]],
    gated: Iterable[Mapping[str, Any]],
    snapshots: Iterable[Mapping[str, Any]],
) -> FleetState:
    """The state of ManagedApps ``apps``, labelled Flux objects ``gated`` and FluxUp's
    VolumeSnapshots ``snapshots`` (each labelled with its app and request)."""
    available: Counter[tuple[str, str, str, str]] = Counter()
    count = 0
    for app in apps:
        count += 1
        meta = _meta(app)
        status = app.get("status") or {}
        for candidate in status.get("availableUpdates") or []:
            if not isinstance(candidate, Mapping):
                continue
            key = (
                str(meta.get("namespace", "")),
                str(meta.get("name", "")),
                str(candidate.get("source") or "chart"),
                str(candidate.get("type") or "unknown"),
            )
            available[key] += 1
    held = []
    for obj in gated:
        meta = _meta(obj)
        notes = meta.get("annotations") or {}
        if not notes.get(ann.HELD):
            continue
        held.append(
            HeldRelease(
                kind=str(obj.get("kind", "")),
                namespace=str(meta.get("namespace", "")),
                name=str(meta.get("name", "")),
                app=str((meta.get("labels") or {}).get(ann.MANAGED_APP_LABEL, "")),
                since=_time(notes.get(ann.HELD_SINCE)),
            )
        )
    sets: defaultdict[tuple[str, str], dict[str, dt.datetime | None]] = defaultdict(dict)
    for snap in snapshots:
        meta = _meta(snap)
        labels = meta.get("labels") or {}
        app_name = labels.get(ann.MANAGED_APP_LABEL)
        request = labels.get(_REQUEST_LABEL)
        if not app_name or not request:
            continue
        created = _time(meta.get("creationTimestamp"))
        group = sets[(str(meta.get("namespace", "")), str(app_name))]
        earlier = group.get(request)
        if request not in group or (created and (earlier is None or created < earlier)):
            group[request] = created
    snapshot_sets: dict[tuple[str, str], SnapshotSets] = {}
    for app_key, group in sets.items():
        times = [t for t in group.values() if t is not None]
        snapshot_sets[app_key] = SnapshotSets(
            count=len(group),
            oldest=min(times) if times else None,
            newest=max(times) if times else None,
        )
    return FleetState(
        apps=count,
        available=dict(available),
        held=tuple(sorted(held, key=lambda h: (h.namespace, h.kind, h.name))),
        snapshot_sets=snapshot_sets,
    )
