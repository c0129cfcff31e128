"""The reconcilers' announcements: which transitions are heard, with the app's
preferences applied, counted in the metrics either way."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from fluxup.adapters.metrics import OperatorMetrics
from fluxup.adapters.notify import Message, Notifier
from fluxup.api.managedapp import ManagedApp
from fluxup.api.meta import Identity
from fluxup.api.upgraderequest import UpgradePhase, UpgradeRequest, UpgradeRequestStatus
from fluxup.reconcile.announce import announce_upgrade
from fluxup.reconcile.context import Context
from fluxup.settings import Settings

P = UpgradePhase
T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


class Recorder:
    """A channel that keeps what it is given (the delivery itself is tested against real
    receivers in tests/adapters/test_notify.py)."""

    kind = "recorder"
    name = "recorder"

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> bool:
        self.messages.append(message)
        return True


def app(notifications: dict[str, bool] | None = None) -> ManagedApp:
    spec: dict[str, Any] = {"helmReleaseRef": {"name": "redis"}}
    if notifications is not None:
        spec["notifications"] = notifications
    return ManagedApp.from_dict({"apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
                                 "metadata": {"name": "redis", "namespace": "apps"},
                                 "spec": spec, "status": {"currentVersion": "1.0.0"}})


def request(dry_run: bool = False) -> UpgradeRequest:
    return UpgradeRequest.from_dict({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "UpgradeRequest",
        "metadata": {"name": "up", "namespace": "apps"},
        "spec": {"managedAppRef": {"name": "redis"}, "targetVersion": "2.0.0",
                 "origin": "ui", "dryRun": dry_run}})


def context() -> tuple[Context, Recorder, OperatorMetrics]:
    recorder = Recorder()
    metrics = OperatorMetrics()
    ctx = Context(kube=None, settings=Settings(), open_git=None, events=None,  # type: ignore[arg-type]
                  now=lambda: T0, metrics=metrics, notifier=Notifier([recorder]))
    return ctx, recorder, metrics


def value(metrics: OperatorMetrics, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def status(phase: UpgradePhase, **kw: Any) -> UpgradeRequestStatus:
    return UpgradeRequestStatus(phase=phase, started_at=T0, **kw)


async def test_start_success_and_failure_are_announced() -> None:
    ctx, rec, metrics = context()
    announce_upgrade(ctx, request(), app(), P.PENDING, status(P.PREFLIGHT))
    announce_upgrade(ctx, request(), app(), P.PREFLIGHT, status(P.COMMITTING))  # quiet
    done = status(P.SUCCEEDED, completed_at=T0 + dt.timedelta(seconds=95),
                  previous_identity=Identity("1.0.0"), target_identity=Identity("2.0.0"))
    announce_upgrade(ctx, request(), app(), P.HEALTH_CHECKING, done)
    failed = dataclasses.replace(done, phase=P.FAILED, message="HealthCheckFailed: not ready")
    announce_upgrade(ctx, request(), app(), P.UPGRADING, failed)
    await ctx.notifier.drain()  # type: ignore[union-attr]
    titles = [m.title for m in rec.messages]
    assert titles == ["Upgrading apps/redis to 2.0.0", "Upgraded apps/redis to 2.0.0",
                      "Upgrade of apps/redis to 2.0.0 failed"]
    assert "1.0.0 → 2.0.0" in rec.messages[1].body
    assert "Duration: 1m35s" in rec.messages[1].body
    assert "HealthCheckFailed: not ready" in rec.messages[2].body
    assert rec.messages[2].flux_event is not None
    assert rec.messages[2].flux_event["severity"] == "error"
    assert value(metrics, "fluxup_operations_total", operation="upgrade", result="succeeded") == 1
    assert value(metrics, "fluxup_operation_duration_seconds_sum", operation="upgrade",
                 result="failed") == 95
    assert value(metrics, "fluxup_upgrades_started_total", origin="ui") == 1


async def test_preferences_silence_notifications_not_metrics() -> None:
    ctx, rec, metrics = context()
    quiet = app({"onUpgrade": False, "onFailure": False})
    announce_upgrade(ctx, request(), quiet, P.QUEUED, status(P.PREFLIGHT))
    announce_upgrade(ctx, request(), quiet, P.UPGRADING, status(P.FAILED, completed_at=T0))
    await ctx.notifier.drain()  # type: ignore[union-attr]
    assert rec.messages == []
    assert value(metrics, "fluxup_operations_total", operation="upgrade", result="failed") == 1


async def test_dry_runs_are_quiet() -> None:
    ctx, rec, metrics = context()
    announce_upgrade(ctx, request(dry_run=True), app(), P.PREFLIGHT, status(P.SUCCEEDED))
    await ctx.notifier.drain()  # type: ignore[union-attr]
    assert rec.messages == []
    assert value(metrics, "fluxup_operations_total", operation="upgrade", result="succeeded") == 0
