"""Refresh the operator's fleet gauges from the cluster, right before a scrape.

Wired by :mod:`fluxup.operator` as the metrics server's ``before_scrape``: lists the
ManagedApps, the labelled HelmReleases and OCIRepositories and FluxUp's VolumeSnapshots,
builds the :class:`~fluxup.logic.fleet_state.FleetState` and hands it to
:class:`~fluxup.adapters.metrics.OperatorMetrics`. Scrapes closer together than
``min_interval`` reuse the last state; a failed read keeps it and is counted.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fluxup.adapters.kube import Kube, R
from fluxup.adapters.metrics import FleetGauges, HeldGauge, OperatorMetrics
from fluxup.api import annotations as ann
from fluxup.errors import FluxUpError
from fluxup.logic.fleet_state import FleetState, build_fleet_state
from fluxup.logic.snapshots import REQUEST_LABEL

__all__ = ["FleetRefresher", "build_fleet_gauges"]

log = logging.getLogger(__name__)


def build_fleet_gauges(state: FleetState) -> FleetGauges:
    """The gauge values of ``state`` (times as Unix seconds)."""
    return FleetGauges(
        apps=state.apps,
        available=state.available,
        held=[
            HeldGauge(h.kind, h.namespace, h.name, h.app,
                      h.since.timestamp() if h.since else None)
            for h in state.held
        ],
        snapshot_sets={
            key: (s.count, s.oldest.timestamp() if s.oldest else None,
                  s.newest.timestamp() if s.newest else None)
            for key, s in state.snapshot_sets.items()
        },
    )


def _labelled(objs: list[dict[str, object]], label: str) -> list[dict[str, object]]:
    out = []
    for obj in objs:
        meta = obj.get("metadata")
        labels = meta.get("labels") if isinstance(meta, dict) else None
        if isinstance(labels, dict) and label in labels:
            out.append(obj)
    return out


class FleetRefresher:
    """``await refresher()`` brings the fleet gauges up to date (at most every
    ``min_interval`` seconds)."""

    def __init__(self, kube: Kube, metrics: OperatorMetrics, min_interval: float = 5.0) -> None:
        self._kube = kube
        self._metrics = metrics
        self._min_interval = min_interval
        self._last = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> None:
        async with self._lock:
            if self._last and time.monotonic() - self._last < self._min_interval:
                return
            try:
                apps = await self._kube.list(R.MANAGEDAPP)
                gated = _labelled(await self._kube.list(R.HELMRELEASE), ann.MANAGED_APP_LABEL)
                gated += _labelled(await self._kube.list(R.OCIREPOSITORY), ann.MANAGED_APP_LABEL)
                snapshots = _labelled(await self._kube.list(R.SNAPSHOT), REQUEST_LABEL)
            except FluxUpError as exc:
                self._metrics.refresh_errors.inc()
                log.warning("metrics: could not read the fleet state: %s", exc)
                return
            self._metrics.set_fleet(build_fleet_gauges(build_fleet_state(apps, gated, snapshots)))
            self._last = time.monotonic()
