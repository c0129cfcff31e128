"""End approvals with their request, and remove any that outlived it.

:func:`end_approvals` is called by the UpgradeRequest and RollbackRequest reconcilers
when a request ends (Succeeded, Failed, deleted): it removes ``fluxup.dev/approved``
from the Flux objects where it names that request. :func:`remove_outlived_approvals` is
the level-triggered twin, run by the ManagedApp reconciler on every pass and timer tick:
an approval (line 1's on the HelmRelease/OCIRepository, line 2's on the ManagedApp) whose
request has ended or is gone is removed, so a crash between two writes or a request
deleted while the operator was down never leaves an approval that lets a later apply
through (:mod:`fluxup.logic.approvals` decides).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from fluxup.adapters.kube import Obj, R, Resource
from fluxup.api import annotations as ann
from fluxup.logic.approvals import RequestState, approval_outlived, determine_request_state
from fluxup.logic.identity import approval_of, parse_approval, parse_request_ref
from fluxup.logic.release_record import parse_release_gate
from fluxup.reconcile.context import Context

__all__ = ["end_approvals", "flux_resource_of", "remove_outlived_approvals"]

log = logging.getLogger(__name__)


def flux_resource_of(obj: Obj) -> Resource:
    return R.OCIREPOSITORY if obj.get("kind") == "OCIRepository" else R.HELMRELEASE


async def end_approvals(ctx: Context, request_ref: str, objects: Iterable[Obj | None]) -> None:
    """Remove ``fluxup.dev/approved`` from ``objects`` where it was given to
    ``request_ref`` (``<Kind>/<namespace>/<name>``); other approvals stay."""
    for obj in objects:
        if obj is None:
            continue
        approval = approval_of(obj)
        if approval is None or approval.request != request_ref:
            continue
        meta = obj["metadata"]
        await ctx.kube.merge_patch(flux_resource_of(obj), meta["namespace"], meta["name"],
                                   {"metadata": {"annotations": {ann.APPROVED: None}}})


async def _request_state(ctx: Context, ref: str | None) -> RequestState | None:
    parts = parse_request_ref(ref)
    if parts is None:
        return None
    kind, namespace, name = parts
    res = R.UPGRADEREQUEST if kind == "UpgradeRequest" else R.ROLLBACKREQUEST
    return determine_request_state(await ctx.kube.find(res, namespace, name))


def _notes(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


async def remove_outlived_approvals(
    ctx: Context, app_obj: Obj, objects: Iterable[Obj | None]
) -> list[str]:
    """Remove approvals whose request ended or is gone from the Flux ``objects`` and
    line 2's from ``app_obj``; returns what was removed (for the log)."""
    removed: list[str] = []
    for obj in objects:
        if obj is None:
            continue
        text = _notes(obj).get(ann.APPROVED)
        approval = parse_approval(text)
        state = await _request_state(ctx, approval.request if approval else None)
        if approval_outlived(text, state):
            meta = obj["metadata"]
            await ctx.kube.merge_patch(flux_resource_of(obj), meta["namespace"], meta["name"],
                                       {"metadata": {"annotations": {ann.APPROVED: None}}})
            removed.append(f"{obj.get('kind')} {meta['namespace']}/{meta['name']}")
    text = _notes(app_obj).get(ann.RELEASE_APPROVED)
    if text:
        gate = parse_release_gate(app_obj)
        ref = gate.approved_for if gate is not None else None
        state = await _request_state(ctx, ref)
        if ref is None or state is not RequestState.ACTIVE:
            meta = app_obj["metadata"]
            await ctx.kube.merge_patch(R.MANAGEDAPP, meta["namespace"], meta["name"],
                                       {"metadata": {"annotations": {ann.RELEASE_APPROVED: None}}})
            removed.append(f"ManagedApp {meta['namespace']}/{meta['name']} (release record)")
    for what in removed:
        log.info("removed an approval that outlived its request from %s", what)
    return removed
