"""Audit emergency bypasses of the gate (DESIGN.md §2, rule 7).

Called by :mod:`fluxup.handlers.registry` on every event of a managed HelmRelease or
OCIRepository that carries ``fluxup.dev/bypass: "<reason>"``. The webhook lets such an
object be un-suspended by anyone; here the operator makes that visible: a Warning Event
on the object naming the reason, recorded once per reason (the reason it recorded is
kept in ``fluxup.dev/bypass-recorded``, so a restart or a repeated event adds nothing).
"""

from __future__ import annotations

from fluxup.adapters.kube import Obj, R
from fluxup.api import annotations as ann
from fluxup.reconcile.announce import announce_bypass
from fluxup.reconcile.context import Context

__all__ = ["BYPASS_RECORDED", "record_bypass"]

BYPASS_RECORDED = "fluxup.dev/bypass-recorded"


async def record_bypass(ctx: Context, obj: Obj) -> bool:
    """Record the bypass on ``obj`` if not yet recorded; True if an Event was written."""
    meta = obj.get("metadata") or {}
    notes = meta.get("annotations") or {}
    reason = notes.get(ann.BYPASS)
    if not reason or notes.get(BYPASS_RECORDED) == reason:
        return False
    held = notes.get(ann.HELD, "")
    await ctx.events.record(
        obj, "GateBypassed",
        f"{obj.get('kind')} {meta.get('namespace')}/{meta.get('name')} was released past "
        f"the FluxUp gate without pre-upgrade snapshots (held {held or 'nothing'}); "
        f"reason given: {reason}",
        warning=True,
    )
    announce_bypass(ctx, obj, reason, held or None)
    res = R.HELMRELEASE if obj.get("kind") == "HelmRelease" else R.OCIREPOSITORY
    await ctx.kube.merge_patch(res, meta.get("namespace"), str(meta.get("name")),
                               {"metadata": {"annotations": {BYPASS_RECORDED: reason}}})
    return True
