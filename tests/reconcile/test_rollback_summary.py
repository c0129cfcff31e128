"""The RollbackRequest reconciler's pure helpers: the condition summary (the only writer
of ``Ready``), phase entry (transition check, deadlines) and the autoRollback name."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from fluxup.api.conditions import ConditionStatus, ConditionType, Reason, find_condition
from fluxup.api.managedapp import ManagedApp
from fluxup.api.rollbackrequest import RollbackPhase, RollbackRequestStatus
from fluxup.errors import TransitionError
from fluxup.reconcile.rollback import build_auto_rollback_name, enter, summarize

P = RollbackPhase
T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


def app(spec: dict[str, Any] | None = None) -> ManagedApp:
    return ManagedApp.from_dict({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
        "metadata": {"name": "shop", "namespace": "apps"},
        "spec": {"helmReleaseRef": {"name": "shop"}, **(spec or {})},
    })


@pytest.mark.parametrize(
    ("phase", "ready", "reconciling", "stalled"),
    [
        (P.PENDING, (ConditionStatus.FALSE, Reason.PROGRESSING), ConditionStatus.TRUE,
         ConditionStatus.FALSE),
        (P.QUEUED, (ConditionStatus.FALSE, Reason.QUEUED), ConditionStatus.TRUE,
         ConditionStatus.FALSE),
        (P.RESTORING_VOLUMES, (ConditionStatus.FALSE, Reason.PROGRESSING), ConditionStatus.TRUE,
         ConditionStatus.FALSE),
        (P.SUCCEEDED, (ConditionStatus.TRUE, Reason.SUCCEEDED), ConditionStatus.FALSE,
         ConditionStatus.FALSE),
        (P.FAILED, (ConditionStatus.FALSE, Reason.SNAPSHOT_NOT_FOUND), ConditionStatus.FALSE,
         ConditionStatus.TRUE),
    ],
)
def test_summary(
    phase: RollbackPhase,
    ready: tuple[ConditionStatus, str],
    reconciling: ConditionStatus,
    stalled: ConditionStatus,
) -> None:
    status = summarize(RollbackRequestStatus(phase=phase, message="m"), 3, T0,
                       Reason.SNAPSHOT_NOT_FOUND if phase is P.FAILED else None)
    got = find_condition(status.conditions, ConditionType.READY)
    assert got is not None
    assert (got.status, got.reason, got.message) == (*ready, "m")
    assert got.observed_generation == 3
    rec = find_condition(status.conditions, ConditionType.RECONCILING)
    stall = find_condition(status.conditions, ConditionType.STALLED)
    assert rec is not None
    assert stall is not None
    assert rec.status is reconciling
    assert stall.status is stalled
    assert status.observed_generation == 3


def test_summary_keeps_transition_time_when_nothing_changes() -> None:
    first = summarize(RollbackRequestStatus(phase=P.RESUMING, message="m"), 1, T0)
    again = summarize(first, 1, T0 + dt.timedelta(minutes=1))
    assert first.conditions == again.conditions


def test_enter_sets_deadline_from_the_apps_timeouts() -> None:
    managed = app({"timeouts": {"restore": "7m"}, "healthCheck": {"timeout": "2m"}})
    status = enter(RollbackRequestStatus(phase=P.STOPPING_APP), P.RESTORING_VOLUMES, managed, T0)
    assert status.phase is P.RESTORING_VOLUMES
    assert status.deadline == T0 + dt.timedelta(minutes=7)
    assert status.started_at == T0
    health = enter(RollbackRequestStatus(phase=P.STARTING_APP), P.HEALTH_CHECKING, managed, T0)
    assert health.deadline == T0 + dt.timedelta(minutes=2)
    done = enter(RollbackRequestStatus(phase=P.HEALTH_CHECKING), P.SUCCEEDED, managed, T0)
    assert done.completed_at == T0
    assert done.deadline is None


def test_enter_refuses_a_skipped_phase() -> None:
    with pytest.raises(TransitionError, match="not in the table"):
        enter(RollbackRequestStatus(phase=P.SUSPENDING), P.REVERTING_GIT, app(), T0)


def test_auto_rollback_name_is_deterministic_and_valid() -> None:
    assert build_auto_rollback_name("shop-to-1-1-0") == "shop-to-1-1-0-rollback"
    long = build_auto_rollback_name("a" * 253)
    assert len(long) <= 253
    assert long.endswith("-rollback")
