"""Deleting a ManagedApp lets go of the app cleanly (DESIGN.md §2, rule 5).

Called by :mod:`fluxup.reconcile.managedapp` on every pass: :func:`ensure_finalizer`
keeps ``fluxup.dev/managedapp`` on a live ManagedApp; once it is being deleted,
:func:`let_go` waits until no request of the app is in flight (an UpgradeRequest whose
app is being deleted fails on its next pass and gives back what it holds: replicas,
approvals; a rollback runs to its end, its data safety comes first), then removes what
FluxUp wrote (:mod:`fluxup.logic.letgo` builds the patches) in this order — line 2's
label and annotations on the ManagedApp, the HelmRelease's and OCIRepository's label,
annotations and gate hold, the namespace's ``fluxup.dev/release-records`` label when no
other app needs it — and finally the finalizer. Every step is idempotent, so a crash or
a failed call is finished by the next pass.
"""

from __future__ import annotations

import logging

from fluxup.adapters.kube import Obj, R
from fluxup.api import annotations as ann
from fluxup.errors import KubeConflict, KubeNotFound
from fluxup.logic.letgo import (
    APP_FINALIZER,
    build_app_release_patch,
    build_flux_release_patch,
    is_in_flight_for,
    namespace_still_needed,
)
from fluxup.logic.release_record import parse_release_gate
from fluxup.reconcile.context import Context

__all__ = ["APP_FINALIZER", "ensure_finalizer", "let_go"]

log = logging.getLogger(__name__)


async def ensure_finalizer(ctx: Context, app_obj: Obj) -> None:
    """Keep FluxUp's finalizer on a live ManagedApp (the list is written at the
    resourceVersion it was read at, so nobody else's finalizer is lost)."""
    meta = app_obj["metadata"]
    for _ in range(3):
        finalizers = list(meta.get("finalizers") or [])
        if APP_FINALIZER in finalizers or meta.get("deletionTimestamp"):
            return
        try:
            await ctx.kube.merge_patch(R.MANAGEDAPP, meta["namespace"], meta["name"], {
                "metadata": {"finalizers": [*finalizers, APP_FINALIZER],
                             "resourceVersion": meta["resourceVersion"]}})
            return
        except KubeConflict:
            fresh = await ctx.kube.find(R.MANAGEDAPP, meta["namespace"], meta["name"])
            if fresh is None:
                return
            meta = fresh["metadata"]
    raise KubeConflict(f"ManagedApp {meta['namespace']}/{meta['name']} kept changing while "
                       "FluxUp added its finalizer; trying again later")


async def _in_flight(ctx: Context, namespace: str, app: str) -> list[str]:
    found = []
    for res in (R.UPGRADEREQUEST, R.ROLLBACKREQUEST):
        for request in await ctx.kube.list(res, namespace):
            if is_in_flight_for(request, app):
                found.append(f"{request.get('kind') or res.plural} {request['metadata']['name']}")
    return found


async def _release_flux_objects(ctx: Context, app_obj: Obj) -> list[str]:
    """Take the app's HelmRelease and its OCIRepository out of the gate; what was done."""
    meta, spec = app_obj["metadata"], app_obj.get("spec") or {}
    ref = spec.get("helmReleaseRef") or {}
    hr_ns = ref.get("namespace") or meta["namespace"]
    targets = [(R.HELMRELEASE, hr_ns, str(ref.get("name")))]
    source = (app_obj.get("status") or {}).get("chartSource") or {}
    if source.get("kind") == "OCIRepository" and source.get("name"):
        targets.append((R.OCIREPOSITORY, source.get("namespace") or hr_ns, source["name"]))
    done = []
    for res, namespace, name in targets:
        obj = await ctx.kube.find(res, namespace, name)
        if obj is None:
            continue
        patch = build_flux_release_patch(obj, meta["name"])
        if patch is None:
            continue
        await ctx.kube.merge_patch(res, namespace, name, patch)
        released = (patch.get("spec") or {}).get("suspend") is False
        done.append(f"{obj.get('kind')} {namespace}/{name}"
                    + (" (released from its hold)" if released else ""))
    return done


async def _release_namespace(ctx: Context, app_obj: Obj, storage: str | None) -> None:
    if not storage:
        return
    apps = await ctx.kube.list(R.MANAGEDAPP, None)
    if namespace_still_needed(storage, app_obj, apps):
        return
    ns = await ctx.kube.find(R.NAMESPACE, None, storage)
    labels = ((ns or {}).get("metadata") or {}).get("labels") or {}
    if ns is not None and ann.RELEASE_RECORDS_NAMESPACE_LABEL in labels:
        await ctx.kube.merge_patch(R.NAMESPACE, None, storage, {
            "metadata": {"labels": {ann.RELEASE_RECORDS_NAMESPACE_LABEL: None}}})


async def let_go(ctx: Context, app_obj: Obj) -> bool:
    """Finish deleting ``app_obj`` once nothing of it is in flight; True when done."""
    meta = app_obj["metadata"]
    if APP_FINALIZER not in (meta.get("finalizers") or []):
        return True
    namespace, name = meta["namespace"], meta["name"]
    busy = await _in_flight(ctx, namespace, name)
    if busy:
        log.info("ManagedApp %s/%s is being deleted; waiting for %s to end", namespace, name,
                 ", ".join(busy))
        return False
    gate = parse_release_gate(app_obj)
    patch = build_app_release_patch(app_obj)
    if patch is not None:  # line 2 first: it no longer finds the app
        await ctx.kube.merge_patch(R.MANAGEDAPP, namespace, name, patch)
    done = await _release_flux_objects(ctx, app_obj)
    await _release_namespace(ctx, app_obj, gate.storage_namespace if gate else None)
    fresh = await ctx.kube.find(R.MANAGEDAPP, namespace, name)
    if fresh is None:
        return True
    await ctx.events.record(
        app_obj, "Unmanaged",
        f"ManagedApp {namespace}/{name} deleted: FluxUp no longer gates "
        + (", ".join(done) if done else "its release") + "; Flux applies it as Git says",
    )
    remaining = [f for f in fresh["metadata"].get("finalizers") or [] if f != APP_FINALIZER]
    try:
        await ctx.kube.merge_patch(R.MANAGEDAPP, namespace, name, {
            "metadata": {"finalizers": remaining,
                         "resourceVersion": fresh["metadata"]["resourceVersion"]}})
    except (KubeConflict, KubeNotFound):
        return False  # changed meanwhile: the next pass finishes
    return True
