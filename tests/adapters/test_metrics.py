"""The operator's /metrics: served on its own port, parsed with Prometheus' own parser."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fluxup.adapters.metrics import FleetGauges, HeldGauge, OperatorMetrics, serve_metrics


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_scrape_shows_operations_fleet_and_scans() -> None:
    metrics = OperatorMetrics()
    refreshed = []

    async def refresh() -> None:
        refreshed.append(1)
        metrics.set_fleet(FleetGauges(
            apps=2,
            available={("apps", "redis", "chart", "minor"): 2},
            held=[HeldGauge("HelmRelease", "apps", "redis", "redis", time.time() - 600)],
            snapshot_sets={("apps", "redis"): (3, 1000.0, 2000.0)},
        ))

    metrics.observe_operation("upgrade", "succeeded", 90.0)
    metrics.observe_operation("upgrade", "failed", 30.0)
    metrics.observe_operation("rollback", "succeeded", None)
    metrics.observe_scan("success", 42.0)
    metrics.observe_notification("json", False)
    async with (
        serve_metrics(metrics, "127.0.0.1", 0, before_scrape=refresh) as port,
        httpx.AsyncClient() as client,
    ):
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    got = samples(response.text)
    assert refreshed == [1]
    assert got[("fluxup_operations_total",
                (("operation", "upgrade"), ("result", "succeeded")))] == 1
    assert got[("fluxup_operations_total",
                (("operation", "rollback"), ("result", "succeeded")))] == 1
    assert got[("fluxup_operation_duration_seconds_sum",
                (("operation", "upgrade"), ("result", "failed")))] == 30
    assert ("fluxup_operation_duration_seconds_count",
            (("operation", "rollback"), ("result", "succeeded"))) not in got  # no duration
    assert got[("fluxup_renovate_scans_total", (("result", "success"),))] == 1
    assert got[("fluxup_renovate_scan_duration_seconds_sum", (("result", "success"),))] == 42
    assert got[("fluxup_notifications_total", (("channel", "json"), ("result", "failure")))] == 1
    assert got[("fluxup_managed_apps", ())] == 2
    assert got[("fluxup_available_updates", (("app", "redis"), ("namespace", "apps"),
                                             ("source", "chart"), ("type", "minor")))] == 2
    assert got[("fluxup_releases_held", ())] == 1
    held = (("app", "redis"), ("kind", "HelmRelease"), ("name", "redis"), ("namespace", "apps"))
    assert 590 <= got[("fluxup_release_hold_age_seconds", held)] <= 3600
    assert got[("fluxup_snapshot_sets", (("app", "redis"), ("namespace", "apps")))] == 3
    assert got[("fluxup_snapshot_set_oldest_timestamp_seconds",
                (("app", "redis"), ("namespace", "apps")))] == 1000


async def test_registries_are_private() -> None:
    a, b = OperatorMetrics(), OperatorMetrics()
    a.observe_operation("upgrade", "succeeded", 1.0)
    got = samples(b.render().decode())
    assert ("fluxup_operations_total", (("operation", "upgrade"), ("result", "succeeded"))) \
        not in got
