"""Audit emergency bypasses of the gate and end them once what they covered runs.

Called by :mod:`fluxup.handlers.registry` on every event of a managed HelmRelease or
OCIRepository that carries ``fluxup.dev/bypass: "<reason>"``, and by the ManagedApp
reconciler on every pass and timer tick. :func:`fluxup.logic.bypass.determine_bypass_action`
decides:

* audit: a Warning Event on the object naming the reason and the identity the bypass
  covers (``fluxup.dev/bypassed``, bound by the webhook), plus a notification; recorded
  once per reason (``fluxup.dev/bypass-recorded``), so a restart adds nothing;
* clear: the covered identity runs, so the bypass has done its job: the operator removes
  ``fluxup.dev/bypass``, its binding and its audit mark (a Normal Event says so), and the
  gate holds the next version as usual.

The HelmRelease watch and the ManagedApp timer both call :func:`record_bypass`, often in
the same second. Each call takes one lock per object and decides from the object as it is
*then* (read inside the lock), so the second caller sees the first one's audit mark and
audits nothing: one Event per reason, however many callers.
"""

from __future__ import annotations

from fluxup.adapters.kube import Obj, R, Resource
from fluxup.api import annotations as ann
from fluxup.logic.bypass import (
    BYPASS_RECORDED,
    BypassAction,
    determine_bypass_action,
    parse_binding,
)
from fluxup.logic.identity import GatedKind
from fluxup.reconcile.announce import announce_bypass
from fluxup.reconcile.context import Context

__all__ = ["BYPASS_RECORDED", "record_bypass"]


def _what(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')} {meta.get('namespace')}/{meta.get('name')}"


async def record_bypass(ctx: Context, obj: Obj) -> bool:
    """Audit or end the bypass on ``obj`` (any copy of it, however old); True if an Event
    was written."""
    kind = GatedKind.OCI_REPOSITORY if obj.get("kind") == "OCIRepository" else (
        GatedKind.HELM_RELEASE)
    if determine_bypass_action(kind, obj) is BypassAction.NONE:
        return False  # the common case costs no read
    res = R.HELMRELEASE if kind is GatedKind.HELM_RELEASE else R.OCIREPOSITORY
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace"), str(meta.get("name"))
    async with ctx.lock(f"bypass-audit/{res.plural}/{namespace}/{name}"):
        fresh = await ctx.kube.find(res, namespace, name)
        if fresh is None:
            return False
        return await _act(ctx, kind, res, fresh)


async def _act(ctx: Context, kind: GatedKind, res: Resource, obj: Obj) -> bool:
    action = determine_bypass_action(kind, obj)
    if action is BypassAction.NONE:
        return False
    meta = obj.get("metadata") or {}
    notes = meta.get("annotations") or {}
    reason = str(notes.get(ann.BYPASS))
    binding = parse_binding(notes.get(ann.BYPASSED))
    if action is BypassAction.CLEAR:
        covered = binding.identity.describe() if binding is not None else "its version"
        await ctx.kube.merge_patch(res, meta.get("namespace"), str(meta.get("name")), {
            "metadata": {"annotations": {ann.BYPASS: None, ann.BYPASSED: None,
                                         BYPASS_RECORDED: None}}})
        await ctx.events.record(
            obj, "GateBypassEnded",
            f"{_what(obj)} runs {covered}, which the bypass ({reason}) let through; FluxUp "
            "removed the bypass, so the next version is held until its snapshots are ready",
        )
        return True
    held = notes.get(ann.HELD, "")
    covers = binding.identity.describe() if binding is not None else (held or "nothing")
    await ctx.events.record(
        obj, "GateBypassed",
        f"{_what(obj)} was released past the FluxUp gate without pre-upgrade snapshots "
        f"(the bypass covers {covers} only); reason given: {reason}",
        warning=True,
    )
    announce_bypass(ctx, obj, reason,
                    binding.identity.describe() if binding is not None else held or None)
    await ctx.kube.merge_patch(res, meta.get("namespace"), str(meta.get("name")),
                               {"metadata": {"annotations": {BYPASS_RECORDED: reason}}})
    return True
