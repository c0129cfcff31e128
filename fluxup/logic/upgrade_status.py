"""An UpgradeRequest's status, computed: entering a phase and the condition summary.

:func:`enter_phase` moves a status into a phase (transition checked against
:mod:`fluxup.logic.upgrade_machine`, start time, deadline from the ManagedApp's
timeouts, completion time); :func:`summarize_upgrade` derives ``Ready``, ``Reconciling``
and ``Stalled`` from the phase — the only code that writes ``Ready``. Called once per
pass by :mod:`fluxup.reconcile.upgrade`. Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from fluxup.api.conditions import Condition, ConditionStatus, ConditionType, Reason, set_condition
from fluxup.api.managedapp import Timeouts
from fluxup.api.upgraderequest import (
    TERMINAL_UPGRADE_PHASES,
    SnapshotStatus,
    UpgradePhase,
    UpgradeRequestStatus,
)
from fluxup.errors import TransitionError
from fluxup.logic.upgrade_machine import is_allowed, phase_timeout

__all__ = [
    "DEFAULT_HEALTH_TIMEOUT",
    "build_deadline",
    "describe_snapshot_errors",
    "determine_deadline_failure",
    "enter_phase",
    "summarize_upgrade",
]

P = UpgradePhase

#: The health-check timeout when the ManagedApp is unknown (its CRD default).
DEFAULT_HEALTH_TIMEOUT = dt.timedelta(minutes=5)


def build_deadline(
    phase: UpgradePhase, timeouts: Timeouts, health: dt.timedelta, now: dt.datetime
) -> dt.datetime | None:
    """When ``phase``, entered at ``now``, must be finished (``None``: unbounded)."""
    name = phase_timeout(phase)
    if name is None:
        return None
    if name == "healthCheck":
        return now + health
    limit: dt.timedelta = getattr(timeouts, name).to_timedelta()
    return now + limit


def describe_snapshot_errors(snaps: tuple[SnapshotStatus, ...]) -> str:
    """``"db-0 (PVC data): quota exceeded; ..."`` for the snapshots that report an
    error; empty when none does."""
    return "; ".join(f"{s.name} (PVC {s.pvc}): {s.error}" for s in snaps if s.error)


def determine_deadline_failure(status: UpgradeRequestStatus) -> tuple[Reason, str]:
    """Why a request whose phase passed its deadline fails, and the message. Snapshots
    that still report an error then failed for good (the CSI snapshotter retried them
    for the whole snapshot timeout); otherwise the phase simply took too long, and the
    last progress message says where it stood."""
    phase = status.phase or P.PENDING
    errors = describe_snapshot_errors(status.snapshots) if phase is P.SNAPSHOTTING else ""
    if errors:
        return Reason.SNAPSHOT_FAILED, (
            f"snapshot failed: {errors} (still failing when the snapshot timeout ended)")
    deadline = f"{status.deadline:%Y-%m-%dT%H:%M:%SZ}" if status.deadline else "unknown"
    last = f"; last seen: {status.message}" if status.message not in (None, str(phase)) else ""
    return Reason.DEADLINE_EXCEEDED, (
        f"{phase} did not finish before its deadline ({deadline}){last}")


def enter_phase(
    status: UpgradeRequestStatus,
    phase: UpgradePhase,
    now: dt.datetime,
    timeouts: Timeouts | None = None,
    health: dt.timedelta = DEFAULT_HEALTH_TIMEOUT,
) -> UpgradeRequestStatus:
    """``status`` moved into ``phase`` at ``now``; raises :class:`TransitionError` for a
    transition the table does not list (a bug in the caller, never user input)."""
    current = status.phase or P.PENDING
    if phase is not current and not is_allowed(current, phase):
        raise TransitionError(f"transition {current} -> {phase} is not in the table")
    done = phase in TERMINAL_UPGRADE_PHASES
    return dataclasses.replace(
        status,
        phase=phase,
        phase_started_at=now,
        deadline=build_deadline(phase, timeouts or Timeouts(), health, now),
        completed_at=now if done else None,
        started_at=status.started_at or now,
    )


def summarize_upgrade(
    status: UpgradeRequestStatus,
    generation: int | None,
    now: dt.datetime,
    failure_reason: str | None = None,
) -> UpgradeRequestStatus:
    """Ready/Reconciling/Stalled from the phase; the only place that writes Ready."""
    phase = status.phase or P.PENDING
    message = status.message or str(phase)
    ready: tuple[ConditionStatus, str]
    if phase is P.SUCCEEDED:
        ready = (ConditionStatus.TRUE, Reason.SUCCEEDED)
    elif phase is P.FAILED:
        ready = (ConditionStatus.FALSE, failure_reason or Reason.FAILED)
    else:
        ready = (ConditionStatus.FALSE, Reason.QUEUED if phase is P.QUEUED else Reason.PROGRESSING)
    in_flight = phase not in TERMINAL_UPGRADE_PHASES
    failed = phase is P.FAILED
    rows = (
        (ConditionType.READY, ready[0], ready[1]),
        (
            ConditionType.RECONCILING,
            ConditionStatus.TRUE if in_flight else ConditionStatus.FALSE,
            Reason.PROGRESSING if in_flight else ready[1],
        ),
        (
            ConditionType.STALLED,
            ConditionStatus.TRUE if failed else ConditionStatus.FALSE,
            Reason.FAILED if failed else Reason.PROGRESSING,
        ),
    )
    conditions = status.conditions
    for type_, cond_status, reason in rows:
        conditions = set_condition(
            conditions, Condition(type_, cond_status, reason, message, now, generation)
        )
    return dataclasses.replace(status, conditions=conditions, observed_generation=generation)

