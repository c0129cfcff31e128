"""Drive one UpgradeRequest through its phases (DESIGN.md §3), one pass at a time.

Called by :mod:`fluxup.handlers.upgraderequest` on every watch event and on a short
timer while the request is in flight. A pass: load the request, its ManagedApp and
HelmRelease → check the phase deadline → run the one idempotent action of the current
phase → pick the next phase from the transition table
(:mod:`fluxup.logic.upgrade_machine`) → write the status once. A crash anywhere is safe:
the next pass re-runs the action of the phase written last, and every action first
checks whether its effect is already there.

The actions, by phase group: :mod:`~fluxup.reconcile.upgrade_lock` (Pending, Queued),
:mod:`~fluxup.reconcile.upgrade_preflight`, :mod:`~fluxup.reconcile.upgrade_apply`
(Committing, AwaitingApply), :mod:`~fluxup.reconcile.upgrade_protect` (Quiescing,
Snapshotting), :mod:`~fluxup.reconcile.upgrade_release` (Releasing, Upgrading,
HealthChecking); :mod:`~fluxup.reconcile.upgrade_end` cleans up when a request ends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from fluxup.adapters.kube import Obj, R
from fluxup.api.conditions import Reason
from fluxup.api.managedapp import ManagedApp
from fluxup.api.upgraderequest import (
    TERMINAL_UPGRADE_PHASES,
    UpgradePhase,
    UpgradeRequest,
    UpgradeRequestStatus,
)
from fluxup.errors import (
    FluxUpError,
    GitAuthError,
    GitConflictError,
    InvalidObjectError,
    KubeConflict,
    KubeNotFound,
    PushRejectedError,
    YamlEditError,
)
from fluxup.logic.upgrade_machine import Route, next_phase
from fluxup.logic.upgrade_status import (
    determine_deadline_failure,
    enter_phase,
    summarize_upgrade,
)
from fluxup.reconcile import (
    upgrade_apply,
    upgrade_end,
    upgrade_lock,
    upgrade_preflight,
    upgrade_protect,
    upgrade_release,
)
from fluxup.reconcile.announce import announce_upgrade
from fluxup.reconcile.context import Context
from fluxup.reconcile.rollback import ensure_auto_rollback
from fluxup.reconcile.upgrade_pass import Outcome, Pass, load_app

__all__ = ["FINALIZER", "reconcile_upgrade"]

log = logging.getLogger(__name__)

FINALIZER = "fluxup.dev/upgrade"

#: Git failures that a retry cannot fix; they end the request (DESIGN.md §4).
PERMANENT_GIT_ERRORS = (GitAuthError, PushRejectedError, GitConflictError, YamlEditError)

P = UpgradePhase

_ACTIONS = {
    P.PENDING: upgrade_lock.acquire,
    P.QUEUED: upgrade_lock.acquire,
    P.PREFLIGHT: upgrade_preflight.preflight,
    P.COMMITTING: upgrade_apply.commit,
    P.AWAITING_APPLY: upgrade_apply.await_apply,
    P.QUIESCING: upgrade_protect.quiesce,
    P.SNAPSHOTTING: upgrade_protect.snapshot,
    P.RELEASING: upgrade_release.release,
    P.UPGRADING: upgrade_release.await_upgrade,
    P.HEALTH_CHECKING: upgrade_release.health_check,
}


def _route(ur: UpgradeRequest, app: ManagedApp | None) -> Route:
    snapshots = bool(app and app.spec.volume_snapshots.enabled and not ur.spec.skip_snapshot)
    quiesce = bool(app and app.spec.quiesce.enabled)
    return Route(
        origin=ur.spec.origin, quiesce=quiesce, snapshots=snapshots, dry_run=ur.spec.dry_run
    )


def _enter(
    status: UpgradeRequestStatus, phase: UpgradePhase, app: ManagedApp | None, now: dt.datetime
) -> UpgradeRequestStatus:
    if app is None:
        return enter_phase(status, phase, now)
    return enter_phase(
        status, phase, now, app.spec.timeouts, app.spec.health_check.timeout.to_timedelta()
    )


async def _write_status(ctx: Context, obj: Obj, status: UpgradeRequestStatus) -> None:
    meta = obj["metadata"]
    await ctx.kube.merge_patch(
        R.UPGRADEREQUEST,
        meta["namespace"],
        meta["name"],
        {"status": status.to_dict(nulls=True)},
        sub="status",
    )


async def _ensure_finalizer(ctx: Context, obj: Obj) -> None:
    finalizers = obj["metadata"].get("finalizers") or []
    if FINALIZER not in finalizers:
        meta = obj["metadata"]
        await ctx.kube.merge_patch(
            R.UPGRADEREQUEST,
            meta["namespace"],
            meta["name"],
            {
                "metadata": {
                    "finalizers": [*finalizers, FINALIZER],
                    "resourceVersion": meta["resourceVersion"],
                }
            },
        )


async def _finalize(ctx: Context, obj: Obj, ur: UpgradeRequest) -> None:
    """Deleting a request undoes what it holds: replicas back, the app's lock freed."""
    if ur.status.phase not in TERMINAL_UPGRADE_PHASES:
        await upgrade_end.undo(ctx, ur)
    await _drop_finalizer(ctx, obj)


async def _drop_finalizer(ctx: Context, obj: Obj) -> None:
    fresh = await ctx.kube.find(R.UPGRADEREQUEST, obj["metadata"]["namespace"],
                                obj["metadata"]["name"])
    meta = (fresh or {}).get("metadata") or {}
    if FINALIZER not in (meta.get("finalizers") or []):
        return
    remaining = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
    try:
        await ctx.kube.merge_patch(
            R.UPGRADEREQUEST,
            meta["namespace"],
            meta["name"],
            {"metadata": {"finalizers": remaining, "resourceVersion": meta["resourceVersion"]}},
        )
    except (KubeNotFound, KubeConflict):
        return  # gone, or changed meanwhile: the next pass drops it


async def reconcile_upgrade(ctx: Context, obj: Obj) -> bool:
    """Run one pass; return True while the request is still in flight."""
    ur = UpgradeRequest.from_dict(obj)
    if obj["metadata"].get("deletionTimestamp"):
        if FINALIZER in (obj["metadata"].get("finalizers") or []):
            await _finalize(ctx, obj, ur)
        return False
    status = ur.status
    phase = status.phase or P.PENDING
    if phase in TERMINAL_UPGRADE_PHASES:
        await _drop_finalizer(ctx, obj)  # in case a crash came between the two writes
        return False
    await _ensure_finalizer(ctx, obj)
    now = ctx.now()
    app_name = ur.spec.managed_app_ref.name
    try:
        app = await load_app(ctx, ur)
        unusable = None if app is not None else (
            f"ManagedApp {app_name} not found in namespace {ur.metadata.namespace}; "
            "create it and a new request, or delete this one"
        )
    except InvalidObjectError as exc:
        app, unusable = None, f"ManagedApp {app_name} cannot be read ({exc})"
    if status.phase is None:
        status = _enter(status, P.PENDING, app, now)
    if status.deadline and now > status.deadline:
        outcome = Outcome.failed(*determine_deadline_failure(status))
    elif app is None:
        outcome = Outcome.failed(Reason.PREFLIGHT_FAILED, unusable or "no ManagedApp")
    elif app.metadata.deletion_timestamp is not None:
        outcome = Outcome.failed(
            Reason.MANAGED_APP_DELETED,
            f"ManagedApp {app_name} is being deleted: FluxUp lets go of the app and ends "
            "this request (nothing more is released)",
        )
    else:
        try:
            outcome = await _ACTIONS[phase](Pass(ctx, obj, ur, app, status))
        except PERMANENT_GIT_ERRORS as exc:
            # retrying cannot help: the push was refused for good, or the edit conflicts
            outcome = Outcome.failed(
                Reason.COMMIT_FAILED,
                f"{phase}: {exc}; nothing was released, {app.metadata.name}"
                " keeps running its current version",
            )
        except FluxUpError as exc:
            log.warning(
                "upgrade %s/%s: %s: %s", ur.metadata.namespace, ur.metadata.name, phase, exc
            )
            outcome = Outcome.waiting(f"{phase}: {exc} (retrying)")
    status = dataclasses.replace(status, **outcome.updates)
    if outcome.message is not None:
        status = dataclasses.replace(status, message=outcome.message)
    route = _route(ur, app)
    target: UpgradePhase | None = None
    if outcome.failure is not None:
        reason, message = outcome.failure
        status = dataclasses.replace(status, message=message)
        if app is not None:
            await upgrade_end.finish(Pass(ctx, obj, ur, app, status), succeeded=False)
            if app.spec.auto_rollback and phase in (P.UPGRADING, P.HEALTH_CHECKING):
                name = await ensure_auto_rollback(ctx, ur)
                status = dataclasses.replace(status, rollback_request=name)
                message += f"; autoRollback started RollbackRequest {name}"
                status = dataclasses.replace(status, message=message)
        else:  # nothing to undo that FluxUp can read; never leave the app locked
            await upgrade_lock.free_app_lock(ctx, ur.metadata.namespace or "", app_name, ur)
        target = P.FAILED
        await ctx.events.record(obj, str(reason), message, warning=True)
    elif outcome.goto is not None:
        target = outcome.goto
    elif outcome.done:
        target = next_phase(phase, route)
        if target is P.SUCCEEDED and app is not None:
            await upgrade_end.finish(Pass(ctx, obj, ur, app, status), succeeded=True)
            await ctx.events.record(obj, "Succeeded", status.message or "upgrade succeeded")
    if target is not None and target is not phase:
        status = _enter(status, target, app, now)
        if target not in TERMINAL_UPGRADE_PHASES:
            status = dataclasses.replace(status, message=f"{target}")
        announce_upgrade(ctx, ur, app, phase, status)
    failure_reason = outcome.failure[0] if outcome.failure else None
    status = summarize_upgrade(status, ur.metadata.generation, now, failure_reason)
    await _write_status(ctx, obj, status)
    if status.phase in TERMINAL_UPGRADE_PHASES:
        await _drop_finalizer(ctx, obj)  # a finished request holds nothing to undo
        return False
    return True


def is_in_flight(body: dict[str, Any]) -> bool:
    """kopf filter: timers run only for requests that are not finished."""
    phase = (body.get("status") or {}).get("phase")
    return phase not in {p.value for p in TERMINAL_UPGRADE_PHASES}
