"""The operator's Prometheus metrics and the small HTTP server that exposes them.

:class:`OperatorMetrics` owns one ``prometheus_client`` registry (never the global one):

* counters and histograms of what happened, fed through small methods by the
  reconcilers (:mod:`fluxup.reconcile.announce`: upgrades and rollbacks by result with
  their duration, upgrades started, gate holds and bypasses), by the Renovate runner
  (:meth:`OperatorMetrics.observe_scan`) and by the notifier;
* gauges of what is, rendered at scrape time from the last :class:`FleetGauges` given to
  :meth:`OperatorMetrics.set_fleet` (available updates by type, releases held now and
  since when, snapshot sets and their age). :mod:`fluxup.reconcile.fleet_metrics` reads
  them from the cluster right before each scrape (``before_scrape``), so they are right
  after a restart and need no hooks in the reconcilers.

:func:`serve_metrics` runs ``/metrics`` on its own port (``FLUXUP_METRICS_ADDRESS``), so
the UI's port never exposes it and a scrape never needs a login. Nothing here decides
anything; names follow Prometheus conventions (``_total``, ``_seconds``, base units).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

__all__ = ["FleetGauges", "HeldGauge", "OperatorMetrics", "serve_metrics"]

log = logging.getLogger(__name__)

_OPERATION_BUCKETS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
_SCAN_BUCKETS = (5, 10, 30, 60, 120, 300, 600, 1200)


@dataclass(frozen=True)
class HeldGauge:
    """One held release: its labels and since when (Unix time, None when unknown)."""

    kind: str
    namespace: str
    name: str
    app: str
    since: float | None


@dataclass(frozen=True)
class FleetGauges:
    """Values of the fleet gauges. ``available``: (namespace, app, source, type) → count;
    ``snapshot_sets``: (namespace, app) → (count, oldest, newest) in Unix time."""

    apps: int = 0
    available: Mapping[tuple[str, str, str, str], int] = field(default_factory=dict)
    held: Sequence[HeldGauge] = ()
    snapshot_sets: Mapping[tuple[str, str], tuple[int, float | None, float | None]] = field(
        default_factory=dict
    )


class _FleetCollector(Collector):
    """Renders the last :class:`FleetGauges` as gauges (ages relative to the scrape)."""

    def __init__(self, owner: OperatorMetrics) -> None:
        self._owner = owner

    def collect(self) -> Iterator[Metric]:
        state = self._owner.fleet
        now = time.time()
        apps = GaugeMetricFamily("fluxup_managed_apps", "ManagedApps FluxUp manages.")
        apps.add_metric([], state.apps)
        yield apps
        available = GaugeMetricFamily(
            "fluxup_available_updates",
            "Newer versions Renovate found, by app, source (chart/image) and update type.",
            labels=["namespace", "app", "source", "type"],
        )
        for key, count in sorted(state.available.items()):
            available.add_metric(list(key), count)
        yield available
        held = GaugeMetricFamily("fluxup_releases_held", "Releases the admission gate holds now.")
        held.add_metric([], len(state.held))
        yield held
        labels = ["kind", "namespace", "name", "app"]
        since = GaugeMetricFamily(
            "fluxup_release_held_since_timestamp_seconds",
            "When the gate started holding the release (Unix time).",
            labels=labels,
        )
        age = GaugeMetricFamily(
            "fluxup_release_hold_age_seconds", "How long the gate has held the release.",
            labels=labels,
        )
        for h in state.held:
            values = [h.kind, h.namespace, h.name, h.app]
            since.add_metric(values, h.since or 0.0)
            age.add_metric(values, max(0.0, now - h.since) if h.since else 0.0)
        yield since
        yield age
        labels = ["namespace", "app"]
        sets = GaugeMetricFamily(
            "fluxup_snapshot_sets", "Pre-upgrade snapshot sets kept per app.", labels=labels
        )
        oldest = GaugeMetricFamily(
            "fluxup_snapshot_set_oldest_timestamp_seconds",
            "Creation time of the app's oldest snapshot set (Unix time).", labels=labels,
        )
        newest = GaugeMetricFamily(
            "fluxup_snapshot_set_newest_timestamp_seconds",
            "Creation time of the app's newest snapshot set (Unix time).", labels=labels,
        )
        for (namespace, app), (count, first, last) in sorted(state.snapshot_sets.items()):
            sets.add_metric([namespace, app], count)
            oldest.add_metric([namespace, app], first or 0.0)
            newest.add_metric([namespace, app], last or 0.0)
        yield sets
        yield oldest
        yield newest


class OperatorMetrics:
    """Every metric of one operator process, in one private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.fleet = FleetGauges()
        self._fleet_at = 0.0
        r = self.registry
        self.operations = Counter(
            "fluxup_operations", "Finished upgrades and rollbacks by operation and result.",
            ["operation", "result"], registry=r,
        )
        self.operation_duration = Histogram(
            "fluxup_operation_duration_seconds",
            "Time from a request's start to its end, by operation and result.",
            ["operation", "result"], buckets=_OPERATION_BUCKETS, registry=r,
        )
        self.started = Counter(
            "fluxup_upgrades_started", "Upgrades that started, by origin (ui, kubectl, git).",
            ["origin"], registry=r,
        )
        self.holds = Counter(
            "fluxup_gate_holds", "Holds of the admission gate the operator took over.",
            registry=r,
        )
        self.bypasses = Counter(
            "fluxup_gate_bypasses", "Emergency bypasses of the gate recorded.", registry=r
        )
        self.scans = Counter(
            "fluxup_renovate_scans", "Renovate scans by result.", ["result"], registry=r
        )
        self.scan_duration = Histogram(
            "fluxup_renovate_scan_duration_seconds", "Duration of Renovate scans.",
            ["result"], buckets=_SCAN_BUCKETS, registry=r,
        )
        self.notifications = Counter(
            "fluxup_notifications", "Notification deliveries, by channel kind and result.",
            ["channel", "result"], registry=r,
        )
        self.refresh_errors = Counter(
            "fluxup_metrics_refresh_errors",
            "Scrapes whose fleet state could not be read from the cluster.", registry=r,
        )
        self.state_age = Gauge(
            "fluxup_metrics_state_age_seconds", "Age of the fleet state the gauges show.",
            registry=r,
        )
        self.registry.register(_FleetCollector(self))

    def observe_operation(self, operation: str, result: str, seconds: float | None) -> None:
        """An upgrade or rollback ended (``result``: succeeded or failed)."""
        self.operations.labels(operation, result).inc()
        if seconds is not None:
            self.operation_duration.labels(operation, result).observe(max(0.0, seconds))

    def observe_scan(self, result: str, seconds: float) -> None:
        """One Renovate scan ended (``result``: success, failure, ...)."""
        self.scans.labels(result).inc()
        self.scan_duration.labels(result).observe(max(0.0, seconds))

    def observe_notification(self, channel: str, ok: bool) -> None:
        """One notice was delivered to (or given up on for) a channel kind."""
        self.notifications.labels(channel, "success" if ok else "failure").inc()

    def set_fleet(self, fleet: FleetGauges) -> None:
        self.fleet = fleet
        self._fleet_at = time.monotonic()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        if self._fleet_at:
            self.state_age.set(time.monotonic() - self._fleet_at)
        return generate_latest(self.registry)


@asynccontextmanager
async def serve_metrics(
    metrics: OperatorMetrics,
    host: str,
    port: int,
    before_scrape: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[int]:
    """Serve ``GET /metrics`` on ``host:port`` while the context is open; yields the bound
    port (useful with ``port=0``). ``before_scrape`` refreshes the fleet gauges."""

    async def handle(_: web.Request) -> web.Response:
        if before_scrape is not None:
            await before_scrape()
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for sock in getattr(site._server, "sockets", None) or ():
        bound = sock.getsockname()[1]
        break
    log.info("metrics on http://%s:%d/metrics", host, bound)
    try:
        yield bound
    finally:
        await runner.cleanup()
