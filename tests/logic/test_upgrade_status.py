"""An UpgradeRequest's status, computed: the condition summary (the only writer of
``Ready``) and phase entry (transition check, deadlines, timestamps)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from fluxup.api.conditions import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    find_condition,
)
from fluxup.api.managedapp import ManagedApp
from fluxup.api.upgraderequest import UpgradePhase, UpgradeRequestStatus
from fluxup.errors import TransitionError
from fluxup.logic.upgrade_status import enter_phase, summarize_upgrade

_summarize = summarize_upgrade

P = UpgradePhase
T = ConditionStatus.TRUE
F = ConditionStatus.FALSE
READY = ConditionType.READY
RECONCILING = ConditionType.RECONCILING
STALLED = ConditionType.STALLED

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(seconds=30)
T2 = T0 + dt.timedelta(minutes=2)


def managed_app(spec: dict[str, Any] | None = None) -> ManagedApp:
    return ManagedApp.from_dict(
        {
            "apiVersion": "fluxup.dev/v1alpha1",
            "kind": "ManagedApp",
            "metadata": {"name": "podinfo", "namespace": "apps"},
            "spec": {"helmReleaseRef": {"name": "podinfo"}, **(spec or {})},
        }
    )


def _enter(
    status: UpgradeRequestStatus, phase: UpgradePhase, app: ManagedApp | None, now: dt.datetime
) -> UpgradeRequestStatus:
    if app is None:
        return enter_phase(status, phase, now)
    return enter_phase(
        status, phase, now, app.spec.timeouts, app.spec.health_check.timeout.to_timedelta()
    )


def summary(status: UpgradeRequestStatus) -> dict[str, tuple[ConditionStatus, str, str]]:
    return {c.type: (c.status, c.reason, c.message) for c in status.conditions}


# --- summary ----------------------------------------------------------------------------

_IN_FLIGHT = (T, Reason.PROGRESSING)
_NOT_STALLED = (F, Reason.PROGRESSING)


@pytest.mark.parametrize(
    ("phase", "ready", "reconciling", "stalled"),
    [
        pytest.param(None, (F, Reason.PROGRESSING), _IN_FLIGHT, _NOT_STALLED, id="unset"),
        (P.PENDING, (F, Reason.PROGRESSING), _IN_FLIGHT, _NOT_STALLED),
        (P.QUEUED, (F, Reason.QUEUED), _IN_FLIGHT, _NOT_STALLED),
        (P.PREFLIGHT, (F, Reason.PROGRESSING), _IN_FLIGHT, _NOT_STALLED),
        (P.COMMITTING, (F, Reason.PROGRESSING), _IN_FLIGHT, _NOT_STALLED),
        (P.AWAITING_APPLY, (F, Reason.PROGRESSING), _IN_FLIGHT, _NOT_STALLED),
        (P.QUIESCING, (F, Reason.PROGRESSING), _IN_FLIGHT, _NOT_STALLED),
        (P.SNAPSHOTTING, (F, Reason.PROGRESSING), _IN_FLIGHT, _NOT_STALLED),
        (P.RELEASING, (F, Reason.PROGRESSING), _IN_FLIGHT, _NOT_STALLED),
        (P.UPGRADING, (F, Reason.PROGRESSING), _IN_FLIGHT, _NOT_STALLED),
        (P.HEALTH_CHECKING, (F, Reason.PROGRESSING), _IN_FLIGHT, _NOT_STALLED),
        (P.SUCCEEDED, (T, Reason.SUCCEEDED), (F, Reason.SUCCEEDED), _NOT_STALLED),
        (P.FAILED, (F, Reason.FAILED), (F, Reason.FAILED), (T, Reason.FAILED)),
    ],
)
def test_summary_per_phase(
    phase: UpgradePhase | None,
    ready: tuple[ConditionStatus, str],
    reconciling: tuple[ConditionStatus, str],
    stalled: tuple[ConditionStatus, str],
) -> None:
    result = _summarize(UpgradeRequestStatus(phase=phase), 4, T0)
    message = str(phase or P.PENDING)
    assert summary(result) == {
        READY: (*ready, message),
        RECONCILING: (*reconciling, message),
        STALLED: (*stalled, message),
    }
    assert result.observed_generation == 4
    assert all(c.observed_generation == 4 for c in result.conditions)
    assert all(c.last_transition_time == T0 for c in result.conditions)
    assert result.phase == phase  # the summary never moves the phase


def test_summary_uses_the_status_message() -> None:
    status = UpgradeRequestStatus(phase=P.FAILED, message="snapshot data-web-0 failed: quota")
    result = _summarize(status, 1, T0)
    assert {c.message for c in result.conditions} == {"snapshot data-web-0 failed: quota"}


def test_summary_without_generation() -> None:
    result = _summarize(UpgradeRequestStatus(phase=P.PREFLIGHT), None, T0)
    assert result.observed_generation is None
    assert all(c.observed_generation is None for c in result.conditions)


def test_summary_keeps_other_conditions_and_fields() -> None:
    snapshots_ready = Condition(
        ConditionType.SNAPSHOTS_READY, T, Reason.SUCCEEDED, "2 snapshots ready", T0, 1
    )
    status = UpgradeRequestStatus(
        phase=P.RELEASING, conditions=(snapshots_ready,), git_commit="abc123", started_at=T0
    )
    result = _summarize(status, 2, T1)
    assert [c.type for c in result.conditions] == [
        ConditionType.SNAPSHOTS_READY,
        READY,
        RECONCILING,
        STALLED,
    ]
    assert result.conditions[0] == snapshots_ready
    unchanged = dataclasses.replace(result, conditions=(), observed_generation=None)
    assert unchanged == dataclasses.replace(status, conditions=())


def test_last_transition_time_kept_while_nothing_changes() -> None:
    first = _summarize(UpgradeRequestStatus(phase=P.SNAPSHOTTING, message="waiting"), 1, T0)
    again = _summarize(first, 1, T1)
    assert again.conditions == first.conditions
    assert {c.last_transition_time for c in again.conditions} == {T0}


def test_last_transition_time_moves_only_for_changed_conditions() -> None:
    first = _summarize(UpgradeRequestStatus(phase=P.HEALTH_CHECKING, message="m"), 1, T0)
    # Same message, new phase: Ready/Reconciling flip, Stalled stays False/Progressing.
    done = _summarize(dataclasses.replace(first, phase=P.SUCCEEDED), 1, T1)
    times = {c.type: c.last_transition_time for c in done.conditions}
    assert times == {READY: T1, RECONCILING: T1, STALLED: T0}
    # A new message changes every condition.
    moved = _summarize(dataclasses.replace(done, message="upgraded to 6.5.4"), 1, T2)
    assert {c.last_transition_time for c in moved.conditions} == {T2}


def test_phase_change_without_message_moves_transition_times() -> None:
    """Without a message the phase is the message, so entering a phase is a transition."""
    first = _summarize(UpgradeRequestStatus(phase=P.PREFLIGHT), 1, T0)
    second = _summarize(dataclasses.replace(first, phase=P.AWAITING_APPLY), 1, T1)
    ready = find_condition(second.conditions, READY)
    assert ready is not None
    assert (ready.message, ready.last_transition_time) == ("AwaitingApply", T1)


def test_generation_change_alone_keeps_transition_time() -> None:
    first = _summarize(UpgradeRequestStatus(phase=P.UPGRADING, message="m"), 1, T0)
    second = _summarize(first, 2, T1)
    assert {(c.observed_generation, c.last_transition_time) for c in second.conditions} == {(2, T0)}


# --- entering a phase -------------------------------------------------------------------

CUSTOM = {
    "timeouts": {
        "apply": "3m",
        "quiesce": "90s",
        "snapshot": "4m",
        "upgrade": "20m",
        "restore": "1h",
    },
    "healthCheck": {"timeout": "7m"},
}


@pytest.mark.parametrize(
    ("current", "phase", "custom", "defaults"),
    [
        (None, P.PENDING, None, None),
        (P.PENDING, P.PREFLIGHT, None, None),
        (P.PENDING, P.QUEUED, None, None),
        (P.PREFLIGHT, P.COMMITTING, dt.timedelta(minutes=3), dt.timedelta(minutes=10)),
        (P.COMMITTING, P.AWAITING_APPLY, dt.timedelta(minutes=3), dt.timedelta(minutes=10)),
        (P.AWAITING_APPLY, P.QUIESCING, dt.timedelta(seconds=90), dt.timedelta(minutes=5)),
        (P.QUIESCING, P.SNAPSHOTTING, dt.timedelta(minutes=4), dt.timedelta(minutes=10)),
        (P.SNAPSHOTTING, P.RELEASING, dt.timedelta(minutes=20), dt.timedelta(minutes=15)),
        (P.RELEASING, P.UPGRADING, dt.timedelta(minutes=20), dt.timedelta(minutes=15)),
        (P.UPGRADING, P.HEALTH_CHECKING, dt.timedelta(minutes=7), dt.timedelta(minutes=5)),
        (P.HEALTH_CHECKING, P.SUCCEEDED, None, None),
        (P.SNAPSHOTTING, P.FAILED, None, None),
    ],
)
def test_enter_sets_the_deadline_of_the_phase(
    current: UpgradePhase | None,
    phase: UpgradePhase,
    custom: dt.timedelta | None,
    defaults: dt.timedelta | None,
) -> None:
    status = UpgradeRequestStatus(phase=current, deadline=T0 + dt.timedelta(hours=9))
    with_custom = _enter(status, phase, managed_app(CUSTOM), T1)
    with_default_app = _enter(status, phase, managed_app(), T1)
    without_app = _enter(status, phase, None, T1)
    assert with_custom.phase is phase
    assert with_custom.deadline == (T1 + custom if custom else None)
    assert with_default_app.deadline == (T1 + defaults if defaults else None)
    assert without_app.deadline == with_default_app.deadline


@pytest.mark.parametrize(
    ("current", "phase", "completed"),
    [
        (P.PENDING, P.PREFLIGHT, False),
        (P.PENDING, P.QUEUED, False),
        (P.HEALTH_CHECKING, P.SUCCEEDED, True),
        (P.PENDING, P.FAILED, True),
    ],
)
def test_enter_timestamps(current: UpgradePhase, phase: UpgradePhase, completed: bool) -> None:
    fresh = UpgradeRequestStatus(phase=current)
    entered = _enter(fresh, phase, managed_app(), T1)
    assert entered.phase_started_at == T1
    assert entered.started_at == T1  # first phase entered: the request starts
    assert entered.completed_at == (T1 if completed else None)

    running = UpgradeRequestStatus(
        phase=current, started_at=T0, phase_started_at=T0, completed_at=T0
    )
    entered = _enter(running, phase, managed_app(), T2)
    assert entered.started_at == T0  # kept
    assert entered.phase_started_at == T2
    assert entered.completed_at == (T2 if completed else None)


def test_enter_keeps_the_rest_of_the_status() -> None:
    status = UpgradeRequestStatus(
        phase=P.SNAPSHOTTING,
        message="3 snapshots",
        git_commit="abc123",
        rollback_request=None,
        started_at=T0,
        observed_generation=3,
    )
    entered = _enter(status, P.RELEASING, managed_app(), T1)
    assert (entered.message, entered.git_commit, entered.observed_generation) == (
        "3 snapshots",
        "abc123",
        3,
    )


def test_reentering_the_current_phase_restarts_its_clock() -> None:
    status = UpgradeRequestStatus(
        phase=P.SNAPSHOTTING,
        phase_started_at=T0,
        deadline=T0 + dt.timedelta(minutes=10),
        started_at=T0,
    )
    entered = _enter(status, P.SNAPSHOTTING, managed_app(), T1)
    assert (entered.phase_started_at, entered.deadline) == (T1, T1 + dt.timedelta(minutes=10))


@pytest.mark.parametrize(
    ("current", "phase"),
    [
        (P.UPGRADING, P.SNAPSHOTTING),
        (P.PREFLIGHT, P.RELEASING),
        (P.PENDING, P.SNAPSHOTTING),
        (None, P.RELEASING),  # an unset phase is Pending
        (P.QUEUED, P.PREFLIGHT),
        (P.SUCCEEDED, P.FAILED),
        (P.FAILED, P.PENDING),
        (P.SUCCEEDED, P.PENDING),
    ],
)
def test_enter_refuses_transitions_not_in_the_table(
    current: UpgradePhase | None, phase: UpgradePhase
) -> None:
    status = UpgradeRequestStatus(phase=current)
    shown = current or P.PENDING
    with pytest.raises(TransitionError, match=f"transition {shown} -> {phase} is not in the"):
        _enter(status, phase, managed_app(), T1)
