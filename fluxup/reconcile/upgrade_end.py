"""How an UpgradeRequest ends: finished, failed, or deleted while in flight.

:func:`finish` leaves the app consistent after the last phase: it marks what runs now
(success), gives the writers their replicas back (failure), ends the request's approvals
and release record, frees the app's lock and prunes old snapshots. :func:`undo` does
the part of that a deleted request still owes, also when its ManagedApp cannot be read.
"""

from __future__ import annotations

from fluxup.adapters import flux
from fluxup.adapters.kube import R
from fluxup.api.upgraderequest import UpgradePhase, UpgradeRequest
from fluxup.errors import InvalidObjectError
from fluxup.logic.identity import GatedKind, determine_desired
from fluxup.reconcile.approvals import end_approvals
from fluxup.reconcile.context import Context
from fluxup.reconcile.release_gate import end_release_approval
from fluxup.reconcile.retention import prune_snapshots
from fluxup.reconcile.upgrade_lock import free_app_lock, free_lock
from fluxup.reconcile.upgrade_pass import Pass, helm_release, hr_part, load_app, oci_repository
from fluxup.reconcile.upgrade_protect import restore_replicas
from fluxup.reconcile.upgrade_release import request_ref

__all__ = ["finish", "undo"]


async def finish(p: Pass, succeeded: bool) -> None:
    """Leave the app consistent: mark what runs, restore replicas, free the lock, prune."""
    kube = p.ctx.kube
    target = p.target()
    if succeeded and not p.ur.spec.dry_run:
        hr = await helm_release(p)
        if hr is not None:
            # what runs now, chart source included: the gate's "deployed" while held later
            released = determine_desired(GatedKind.HELM_RELEASE, hr).identity
            part = hr_part(target, p.via_chart_ref)
            await flux.mark_released(
                kube,
                R.HELMRELEASE,
                hr["metadata"]["namespace"],
                hr["metadata"]["name"],
                (released if part.satisfies(released) else part).to_json(),
            )
    if not succeeded:
        await restore_replicas(p)
    await end_approvals(p.ctx, request_ref(p), [await helm_release(p), await oci_repository(p)])
    await end_release_approval(
        p.ctx, p.namespace, p.app.metadata.name or "", request_ref(p),
        succeeded and not p.ur.spec.dry_run,
    )
    await free_lock(p, succeeded)
    if succeeded and not p.ur.spec.dry_run:
        await prune_snapshots(p.ctx, p.app, p.ur.metadata.name)


async def undo(ctx: Context, ur: UpgradeRequest) -> None:
    """A request deleted in flight: give writers their replicas back and free the lock."""
    app_name = ur.spec.managed_app_ref.name
    try:
        app = await load_app(ctx, ur)
    except InvalidObjectError:
        app = None
    if app is None:  # nothing FluxUp can read to undo; never leave the app locked
        await free_app_lock(ctx, ur.metadata.namespace or "", app_name, ur)
        return
    p = Pass(ctx, {}, ur, app, ur.status)
    if ur.status.phase not in (
        UpgradePhase.RELEASING,
        UpgradePhase.UPGRADING,
        UpgradePhase.HEALTH_CHECKING,
    ):
        await restore_replicas(p)
    await end_approvals(ctx, request_ref(p), [await helm_release(p), await oci_repository(p)])
    await end_release_approval(ctx, p.namespace, app.metadata.name or "", request_ref(p), False)
    # recorded as failed, so the hold of its target is not silently re-run (holds.py)
    await free_lock(p, False if ur.status.target_identity is not None else None)

