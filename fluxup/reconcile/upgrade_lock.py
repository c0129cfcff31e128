"""The app's one-operation lock, as an UpgradeRequest takes and frees it.

A ManagedApp runs one request at a time: its ``status.activeRequest`` names the holder.
:func:`acquire` is the action of the Pending and Queued phases (take the lock, or queue
behind the holder or a suspended app); :func:`free_lock` and :func:`free_app_lock` give
it back when the request ends, recording ``status.lastUpgrade`` with it.
"""

from __future__ import annotations

from typing import Any

from fluxup.adapters.kube import Obj, R
from fluxup.api._codec import encode
from fluxup.api.managedapp import LastUpgrade, RequestKind
from fluxup.api.meta import Identity
from fluxup.api.upgraderequest import UpgradePhase, UpgradeRequest
from fluxup.errors import KubeConflict
from fluxup.reconcile.context import Context
from fluxup.reconcile.upgrade_pass import Outcome, Pass

__all__ = ["acquire", "free_app_lock", "free_lock"]


async def acquire(p: Pass) -> Outcome:
    """Take the app's one-operation lock (``status.activeRequest``), or queue behind it."""
    kube = p.ctx.kube
    app_obj = await kube.get(R.MANAGEDAPP, p.app.metadata.namespace, p.app.metadata.name)
    active = (app_obj.get("status") or {}).get("activeRequest") or {}
    mine = {"kind": RequestKind.UPGRADE_REQUEST.value, "name": p.ur.metadata.name}
    if (app_obj.get("spec") or {}).get("suspend") and active != mine:
        message = (f"ManagedApp {p.app.metadata.name} is suspended (spec.suspend); this "
                   "request waits until it is resumed")
        if p.status.phase is UpgradePhase.QUEUED:
            return Outcome.waiting(message)
        return Outcome(goto=UpgradePhase.QUEUED, message=message)
    if active and active != mine:
        holder_res = (
            R.UPGRADEREQUEST if active.get("kind") == "UpgradeRequest" else R.ROLLBACKREQUEST
        )
        holder = await kube.find(holder_res, p.namespace, str(active.get("name")))
        phase = ((holder or {}).get("status") or {}).get("phase")
        if holder is not None and phase not in ("Succeeded", "Failed"):
            message = f"waiting for {active.get('kind')} {active.get('name')} to finish"
            if p.status.phase is UpgradePhase.QUEUED:
                return Outcome.waiting(message)
            return Outcome(goto=UpgradePhase.QUEUED, message=message)
    if active != mine:
        try:
            await kube.merge_patch(
                R.MANAGEDAPP,
                p.app.metadata.namespace,
                p.app.metadata.name,
                {
                    "metadata": {"resourceVersion": app_obj["metadata"]["resourceVersion"]},
                    "status": {"activeRequest": mine},
                },
                sub="status",
            )
        except KubeConflict:
            return Outcome.waiting("another request is taking the app's lock; retrying")
    return Outcome.finished()


async def free_app_lock(
    ctx: Context, namespace: str, app_name: str, ur: UpgradeRequest, extra: Obj | None = None
) -> None:
    """Clear ``status.activeRequest`` of the app if ``ur`` holds it (read raw, so an app
    FluxUp cannot parse is never left locked), together with the ``extra`` status fields."""
    app_obj = await ctx.kube.find(R.MANAGEDAPP, namespace, app_name)
    if app_obj is None:
        return
    patch: dict[str, Any] = dict(extra or {})
    active = (app_obj.get("status") or {}).get("activeRequest") or {}
    if active.get("name") == ur.metadata.name and active.get("kind") == "UpgradeRequest":
        patch["activeRequest"] = None
    if patch:
        await ctx.kube.merge_patch(R.MANAGEDAPP, namespace, app_name, {"status": patch},
                                   sub="status")


async def free_lock(p: Pass, succeeded: bool | None) -> None:
    """Free the app's lock; with ``succeeded`` known (and no dry run), record how the
    upgrade ended as ``status.lastUpgrade`` in the same write."""
    extra: dict[str, Any] = {}
    if succeeded is not None and not p.ur.spec.dry_run:
        now = p.ctx.now()
        last = LastUpgrade(
            upgrade_request=p.ur.metadata.name or "",
            phase=UpgradePhase.SUCCEEDED if succeeded else UpgradePhase.FAILED,
            from_version=(p.status.previous_identity or Identity()).version,
            to_version=p.target().version,
            started_at=p.status.started_at,
            completed_at=now,
        )
        extra["lastUpgrade"] = encode(last)
    await free_app_lock(p.ctx, p.app.metadata.namespace or "", p.app.metadata.name or "", p.ur,
                        extra)

