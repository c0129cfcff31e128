"""Drive one RollbackRequest through its phases (DESIGN.md §3), one pass at a time.

Called by the kopf handlers on every watch event and on a short timer while the request
is in flight. A pass: load the request, its ManagedApp and the UpgradeRequest it undoes
→ check the phase deadline → run the one idempotent action of the current phase
(:mod:`fluxup.reconcile.rollback_steps`, :mod:`fluxup.reconcile.rollback_resume`) →
pick the next phase from the table (:mod:`fluxup.logic.rollback_machine`) → write the
status once, with an Event for each phase entered. A crash anywhere is safe: the next
pass re-runs the action of the phase written last.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fluxup.adapters.kube import Obj, R
from fluxup.api.annotations import MANAGED_APP_LABEL
from fluxup.api.conditions import Condition, ConditionStatus, ConditionType, Reason, set_condition
from fluxup.api.constants import API_VERSION, ROLLBACK_REQUEST
from fluxup.api.managedapp import ManagedApp, Timeouts
from fluxup.api.rollbackrequest import (
    TERMINAL_ROLLBACK_PHASES,
    RollbackPhase,
    RollbackRequest,
    RollbackRequestStatus,
)
from fluxup.api.upgraderequest import UpgradeRequest
from fluxup.errors import (
    FluxUpError,
    GitAuthError,
    GitConflictError,
    KubeConflict,
    KubeNotFound,
    PushRejectedError,
    TransitionError,
    YamlEditError,
)
from fluxup.logic.rollback_machine import changes_anything, is_allowed, next_phase, phase_timeout
from fluxup.logic.snapshots import label_safe
from fluxup.reconcile import rollback_resume as resume
from fluxup.reconcile import rollback_steps as steps
from fluxup.reconcile.context import Context
from fluxup.reconcile.rollback_pass import RollbackPass
from fluxup.reconcile.upgrade_pass import Outcome

__all__ = ["FINALIZER", "ensure_auto_rollback", "is_in_flight", "reconcile_rollback"]

log = logging.getLogger(__name__)

FINALIZER = "fluxup.dev/rollback"
P = RollbackPhase
PERMANENT_GIT_ERRORS = (GitAuthError, PushRejectedError, GitConflictError, YamlEditError)

_ACTIONS: dict[RollbackPhase, Callable[[RollbackPass], Awaitable[Outcome]]] = {
    P.PENDING: steps.acquire,
    P.QUEUED: steps.acquire,
    P.VALIDATING: steps.validate,
    P.SUSPENDING: steps.suspend,
    P.STOPPING_APP: steps.stop_app,
    P.RESTORING_VOLUMES: steps.restore_volumes,
    P.REVERTING_GIT: resume.revert_git,
    P.RESUMING: resume.resume,
    P.STARTING_APP: resume.start_app,
    P.HEALTH_CHECKING: resume.health_check,
}

#: Condition set True when a phase finished.
_DONE_CONDITIONS = {
    P.RESTORING_VOLUMES: ConditionType.VOLUMES_RESTORED,
    P.REVERTING_GIT: ConditionType.GIT_REVERTED,
    P.HEALTH_CHECKING: ConditionType.HEALTHY,
}


def _deadline(
    phase: RollbackPhase, app: ManagedApp | None, now: dt.datetime
) -> dt.datetime | None:
    name = phase_timeout(phase)
    if name is None:
        return None
    if name == "healthCheck":
        health = app.spec.health_check.timeout if app else None
        return now + (health.to_timedelta() if health else dt.timedelta(minutes=5))
    timeouts = app.spec.timeouts if app else Timeouts()
    limit: dt.timedelta = getattr(timeouts, name).to_timedelta()
    return now + limit


def enter(
    status: RollbackRequestStatus, phase: RollbackPhase, app: ManagedApp | None,
    now: dt.datetime,
) -> RollbackRequestStatus:
    """``status`` in ``phase`` from ``now``: start time, deadline, completion."""
    current = status.phase or P.PENDING
    if phase is not current and not is_allowed(current, phase):
        raise TransitionError(f"transition {current} -> {phase} is not in the table")
    return dataclasses.replace(
        status,
        phase=phase,
        phase_started_at=now,
        deadline=_deadline(phase, app, now),
        completed_at=now if phase in TERMINAL_ROLLBACK_PHASES else None,
        started_at=status.started_at or now,
    )


def summarize(
    status: RollbackRequestStatus, generation: int | None, now: dt.datetime,
    failure_reason: str | None = None,
) -> RollbackRequestStatus:
    """Ready/Reconciling/Stalled from the phase; the only place that writes Ready."""
    phase = status.phase or P.PENDING
    message = status.message or str(phase)
    if phase is P.SUCCEEDED:
        ready = (ConditionStatus.TRUE, str(Reason.SUCCEEDED))
    elif phase is P.FAILED:
        ready = (ConditionStatus.FALSE, failure_reason or str(Reason.FAILED))
    else:
        ready = (ConditionStatus.FALSE,
                 str(Reason.QUEUED if phase is P.QUEUED else Reason.PROGRESSING))
    in_flight = phase not in TERMINAL_ROLLBACK_PHASES
    conditions = status.conditions
    for ctype, cstatus, reason in (
        (ConditionType.READY, ready[0], ready[1]),
        (ConditionType.RECONCILING,
         ConditionStatus.TRUE if in_flight else ConditionStatus.FALSE,
         str(Reason.PROGRESSING) if in_flight else ready[1]),
        (ConditionType.STALLED,
         ConditionStatus.TRUE if phase is P.FAILED else ConditionStatus.FALSE,
         str(Reason.FAILED if phase is P.FAILED else Reason.PROGRESSING)),
    ):
        conditions = set_condition(
            conditions, Condition(ctype, cstatus, reason, message, now, generation)
        )
    return dataclasses.replace(status, conditions=conditions, observed_generation=generation)


async def _load(ctx: Context, rr: RollbackRequest, status: RollbackRequestStatus
                ) -> tuple[ManagedApp | None, UpgradeRequest | None]:
    namespace = rr.metadata.namespace
    app_obj = (await ctx.kube.find(R.MANAGEDAPP, namespace, status.managed_app)
               if status.managed_app else None)
    ur_obj = (await ctx.kube.find(R.UPGRADEREQUEST, namespace, status.upgrade_request)
              if status.upgrade_request else None)
    return (ManagedApp.from_dict(app_obj) if app_obj else None,
            UpgradeRequest.from_dict(ur_obj) if ur_obj else None)


async def _write_status(ctx: Context, obj: Obj, status: RollbackRequestStatus) -> None:
    meta = obj["metadata"]
    await ctx.kube.merge_patch(R.ROLLBACKREQUEST, meta["namespace"], meta["name"],
                               {"status": status.to_dict(nulls=True)}, sub="status")


async def _set_finalizers(ctx: Context, obj: Obj, add: bool) -> None:
    fresh = await ctx.kube.find(R.ROLLBACKREQUEST, obj["metadata"]["namespace"],
                                obj["metadata"]["name"])
    meta = (fresh or {}).get("metadata") or {}
    current = list(meta.get("finalizers") or [])
    if not meta or (FINALIZER in current) == add:
        return
    wanted = [*current, FINALIZER] if add else [f for f in current if f != FINALIZER]
    try:
        await ctx.kube.merge_patch(R.ROLLBACKREQUEST, meta["namespace"], meta["name"], {
            "metadata": {"finalizers": wanted, "resourceVersion": meta["resourceVersion"]}})
    except (KubeNotFound, KubeConflict):
        return  # gone, or changed meanwhile: the next pass does it


async def reconcile_rollback(ctx: Context, obj: Obj) -> bool:
    """Run one pass; return True while the request is still in flight."""
    rr = RollbackRequest.from_dict(obj)
    status = rr.status
    phase = status.phase or P.PENDING
    if obj["metadata"].get("deletionTimestamp"):
        if FINALIZER in (obj["metadata"].get("finalizers") or []):
            if phase not in TERMINAL_ROLLBACK_PHASES:
                app, ur = await _load(ctx, rr, status)
                await resume.undo(RollbackPass(ctx, obj, rr, status, app, ur), phase, True)
            await _set_finalizers(ctx, obj, add=False)
        return False
    if phase in TERMINAL_ROLLBACK_PHASES:
        await _set_finalizers(ctx, obj, add=False)
        return False
    await _set_finalizers(ctx, obj, add=True)
    now = ctx.now()
    app, ur = await _load(ctx, rr, status)
    if status.phase is None:
        status = enter(status, P.PENDING, app, now)
    if status.deadline and now > status.deadline:
        outcome = Outcome.failed(
            Reason.DEADLINE_EXCEEDED,
            f"{phase} did not finish before its deadline "
            f"({status.deadline:%Y-%m-%dT%H:%M:%SZ}): {status.message or ''}".rstrip(": "),
        )
    elif app is None and phase not in (P.PENDING, P.QUEUED):
        outcome = Outcome.failed(
            Reason.INVALID_REQUEST,
            f"ManagedApp {status.managed_app} disappeared during the rollback",
        )
    else:
        rp = RollbackPass(ctx, obj, rr, status, app, ur)
        try:
            outcome = await _ACTIONS[phase](rp)
        except PERMANENT_GIT_ERRORS as exc:
            outcome = Outcome.failed(Reason.COMMIT_FAILED, f"{phase}: {exc}")
        except FluxUpError as exc:
            log.warning("rollback %s/%s: %s: %s", rr.metadata.namespace, rr.metadata.name,
                        phase, exc)
            outcome = Outcome.waiting(f"{phase}: {exc} (retrying)")
    status = dataclasses.replace(status, **outcome.updates)
    if outcome.message is not None:
        status = dataclasses.replace(status, message=outcome.message)
    if app is None and status.managed_app:  # resolved by this pass
        app, ur = await _load(ctx, rr, status)
    rp = RollbackPass(ctx, obj, rr, status, app, ur)
    target: RollbackPhase | None = None
    if outcome.failure is not None:
        reason, message = outcome.failure
        if changes_anything(phase) or phase is P.VALIDATING:
            message += await resume.undo(rp, phase, False)
        status = dataclasses.replace(status, message=message)
        target = P.FAILED
        await ctx.events.record(obj, reason, message, warning=True)
    elif outcome.goto is not None:
        target = outcome.goto
    elif outcome.done:
        target = next_phase(phase)
        done_type = _DONE_CONDITIONS.get(phase)
        if done_type is not None:
            status = dataclasses.replace(status, conditions=set_condition(
                status.conditions,
                Condition(done_type, ConditionStatus.TRUE, outcome.reason or str(Reason.SUCCEEDED),
                          status.message or str(phase), now, rr.metadata.generation)))
        if target is P.SUCCEEDED:
            await resume.finish(rp)
    if target is not None and target is not phase:
        status = enter(status, target, app, now)
        if target is not P.FAILED:
            await ctx.events.record(
                obj, str(target), f"{phase} done: {status.message or ''}".rstrip(": ")
            )
        if target not in TERMINAL_ROLLBACK_PHASES:
            status = dataclasses.replace(status, message=str(target))
    failure_reason = outcome.failure[0] if outcome.failure else None
    status = summarize(status, rr.metadata.generation, now, failure_reason)
    await _write_status(ctx, obj, status)
    if status.phase in TERMINAL_ROLLBACK_PHASES:
        await _set_finalizers(ctx, obj, add=False)
        return False
    return True


def is_in_flight(body: dict[str, Any]) -> bool:
    """kopf filter: timers run only for requests that are not finished."""
    phase = (body.get("status") or {}).get("phase")
    return phase not in {p.value for p in TERMINAL_ROLLBACK_PHASES}


def build_auto_rollback_name(upgrade: str) -> str:
    """``<upgrade>-rollback``, shortened to a valid name."""
    return f"{upgrade[:240].rstrip('-.')}-rollback"


async def ensure_auto_rollback(ctx: Context, ur: UpgradeRequest) -> str:
    """Create the one RollbackRequest ``autoRollback`` starts for a failed upgrade (its
    deterministic name makes a second one impossible); return its name."""
    namespace = ur.metadata.namespace or ""
    name = build_auto_rollback_name(ur.metadata.name)
    if await ctx.kube.find(R.ROLLBACKREQUEST, namespace, name) is not None:
        return name
    body = {
        "apiVersion": API_VERSION,
        "kind": ROLLBACK_REQUEST.kind,
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {MANAGED_APP_LABEL: label_safe(ur.spec.managed_app_ref.name)}},
        "spec": {"upgradeRequestRef": {"name": ur.metadata.name}, "origin": "auto"},
    }
    with contextlib.suppress(KubeConflict):  # observed absent; a racing pass made it
        await ctx.kube.create(R.ROLLBACKREQUEST, namespace, body)
    return name
