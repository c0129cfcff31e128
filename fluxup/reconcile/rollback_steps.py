"""The first half of a rollback: lock, validate, suspend Flux, stop the app, restore volumes.

Called only by :mod:`fluxup.reconcile.rollback`, which owns the phase table, deadlines
and the one status write per pass. Each action observes first and acts only when its
effect is missing; whatever must survive a crash is written to the request's status
(suspend states, replicas, retained volumes) or onto the objects themselves (the
replacement claim on the retained volume) *before* the step that depends on it. The
second half (Git, Flux, start, health) is :mod:`fluxup.reconcile.rollback_resume`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import Any

from fluxup.adapters.kube import Obj, R, Resource
from fluxup.api import annotations as ann
from fluxup.api.conditions import Reason
from fluxup.api.managedapp import RequestKind
from fluxup.api.meta import Identity, WorkloadReplicas
from fluxup.api.rollbackrequest import (
    TERMINAL_ROLLBACK_PHASES,
    RestoredPVC,
    RollbackPhase,
    SuspendableKind,
    SuspendedState,
)
from fluxup.api.upgraderequest import TERMINAL_UPGRADE_PHASES
from fluxup.errors import FluxUpError, KubeConflict
from fluxup.logic.letgo import SUSPENDED_BY_ROLLBACK
from fluxup.logic.rollback_plan import (
    RestoreStep,
    build_restored_pvc,
    build_retained_volume_patch,
    determine_restore_step,
    determine_snapshot_set,
    parse_restore_claim,
)
from fluxup.logic.snapshots import REQUEST_LABEL, determine_snapshot_status, label_safe
from fluxup.logic.targets import to_gate
from fluxup.reconcile.health import workload_resource
from fluxup.reconcile.rollback_pass import RollbackPass, resolve_names
from fluxup.reconcile.upgrade_pass import Outcome

__all__ = [
    "REPLICAS_BEFORE",
    "RETENTION_BEFORE",
    "SUSPENDED_BY",
    "acquire",
    "flux_resource",
    "restore_volumes",
    "stop_app",
    "suspend",
    "suspended_by_person",
    "validate",
]

#: On a Flux object a rollback suspended: ``RollbackRequest/<ns>/<name>``. A later
#: rollback treats an object carrying it as not suspended by a person.
SUSPENDED_BY = SUSPENDED_BY_ROLLBACK
#: On a workload a rollback scaled to zero: the replicas it had.
REPLICAS_BEFORE = "fluxup.dev/replicas-before-rollback"
#: On a StatefulSet: its ``persistentVolumeClaimRetentionPolicy`` before the rollback
#: made scale-down keep claims (JSON).
RETENTION_BEFORE = "fluxup.dev/pvc-retention-before-rollback"

_KINDS: dict[SuspendableKind, Resource] = {
    SuspendableKind.KUSTOMIZATION: R.KUSTOMIZATION,
    SuspendableKind.HELM_RELEASE: R.HELMRELEASE,
    SuspendableKind.OCI_REPOSITORY: R.OCIREPOSITORY,
}


def flux_resource(kind: SuspendableKind) -> Resource:
    return _KINDS[kind]


def _phase(obj: Obj | None) -> str | None:
    return ((obj or {}).get("status") or {}).get("phase")


_DONE = {p.value for p in TERMINAL_UPGRADE_PHASES} | {p.value for p in TERMINAL_ROLLBACK_PHASES}


# --- Pending / Queued -----------------------------------------------------------------


async def acquire(rp: RollbackPass) -> Outcome:
    """Resolve the app and upgrade, then take the app's one-operation lock.

    Another operation in flight refuses this request (nothing changed), except the very
    upgrade being rolled back, which is only finishing: then the request waits (Queued).
    """
    kube = rp.ctx.kube
    app_name, ur_name, problem = await resolve_names(rp.ctx, rp.rr)
    if problem or app_name is None:
        return Outcome.failed(Reason.INVALID_REQUEST, f"{problem}; nothing was changed")
    app_obj = await kube.find(R.MANAGEDAPP, rp.namespace, app_name)
    if app_obj is None:
        return Outcome.failed(
            Reason.INVALID_REQUEST,
            f"ManagedApp {rp.namespace}/{app_name} does not exist; nothing was changed",
        )
    if (app_obj.get("spec") or {}).get("suspend"):
        return Outcome.failed(
            Reason.INVALID_REQUEST,
            f"ManagedApp {app_name} is suspended (spec.suspend); resume it and create the "
            "RollbackRequest again; nothing was changed",
        )
    names = {"managed_app": app_name, "upgrade_request": ur_name}
    active = (app_obj.get("status") or {}).get("activeRequest") or {}
    mine = {"kind": RequestKind.ROLLBACK_REQUEST.value, "name": rp.name}
    if active and active != mine:
        kind, holder_name = active.get("kind"), str(active.get("name"))
        res = R.UPGRADEREQUEST if kind == RequestKind.UPGRADE_REQUEST.value else (
            R.ROLLBACKREQUEST
        )
        holder = await kube.find(res, rp.namespace, holder_name)
        if holder is not None and _phase(holder) not in _DONE:
            message = f"waiting for {kind} {holder_name} to finish"
            if kind == RequestKind.UPGRADE_REQUEST.value and holder_name == ur_name:
                if rp.status.phase is RollbackPhase.QUEUED:
                    return Outcome.waiting(message, **names)
                return Outcome(goto=RollbackPhase.QUEUED, message=message, updates=names)
            return Outcome.failed(
                Reason.APP_BUSY,
                f"{app_name} is busy: {kind} {holder_name} is {_phase(holder) or 'Pending'}; "
                "create the RollbackRequest again once it finished; nothing was changed",
                **names,
            )
    if ur_name:
        ur_obj = await kube.find(R.UPGRADEREQUEST, rp.namespace, ur_name)
        if ur_obj is not None and _phase(ur_obj) not in _DONE:
            # the upgrade to undo is still running or just finishing: wait for its end
            message = f"waiting for UpgradeRequest {ur_name} to finish"
            if rp.status.phase is RollbackPhase.QUEUED:
                return Outcome.waiting(message, **names)
            return Outcome(goto=RollbackPhase.QUEUED, message=message, updates=names)
    if active != mine:
        try:
            await kube.merge_patch(
                R.MANAGEDAPP, rp.namespace, app_name,
                {"metadata": {"resourceVersion": app_obj["metadata"]["resourceVersion"]},
                 "status": {"activeRequest": mine}},
                sub="status",
            )
        except KubeConflict:
            return Outcome.waiting("another request is taking the app's lock; retrying", **names)
    return Outcome.finished(**names)


# --- Validating -----------------------------------------------------------------------


async def validate(rp: RollbackPass) -> Outcome:
    """Every snapshot of the set exists, is ReadyToUse and is this app's; the identity to
    return to is known. Reads only: a refusal here changed nothing but the lock."""
    app = rp.need_app()
    ur = rp.ur
    request = rp.status.upgrade_request or ""
    if ur is not None and ur.status.phase not in TERMINAL_UPGRADE_PHASES:
        return Outcome.waiting(f"waiting for UpgradeRequest {ur.metadata.name} to end")
    if ur is not None and ur.spec.dry_run:
        return Outcome.failed(
            Reason.INVALID_REQUEST,
            f"UpgradeRequest {ur.metadata.name} was a dry run and changed nothing to roll "
            "back; nothing was changed",
        )
    namespace = rp.namespace
    if ur is not None and ur.status.snapshots:
        namespace = ur.status.snapshots[0].namespace
    found = await rp.ctx.kube.list(R.SNAPSHOT, namespace, {REQUEST_LABEL: label_safe(request)})
    snapshot_set, problems = determine_snapshot_set(
        found, app.metadata.name, request, {p.name for p in app.status.pvcs}
    )
    ref = rp.rr.spec.snapshot_ref
    if snapshot_set is not None and ref is not None and ref.name not in dict(
        (s, p) for p, s in snapshot_set.pvcs
    ):
        problems = [f"VolumeSnapshot {ref.name} is not part of upgrade {request}'s set"]
        snapshot_set = None
    if snapshot_set is None:
        return Outcome.failed(
            Reason.SNAPSHOT_NOT_FOUND,
            "cannot roll back: " + "; ".join(problems) + "; nothing was changed",
        )
    target = (ur.status.previous_identity if ur is not None else None) or snapshot_set.previous
    if target is None or not (target.version or target.images):
        return Outcome.failed(
            Reason.INVALID_REQUEST,
            f"the version to return to is unknown: UpgradeRequest {request} is gone and its "
            "snapshots do not record what ran before; nothing was changed",
        )
    current = Identity(version=app.status.current_version, images=app.status.current_images)
    rolled_back = (ur.status.target_identity if ur is not None else None) or current
    restored = rp.status.restored_pvcs or tuple(
        RestoredPVC(name=pvc, namespace=snapshot_set.namespace, snapshot=snap, restored=False)
        for pvc, snap in snapshot_set.pvcs
    )
    return Outcome.finished(
        f"{len(restored)} PVC(s) to restore; returning {app.metadata.name} from "
        f"{to_gate(rolled_back).describe()} to {to_gate(target).describe()}",
        target_identity=target,
        from_version=to_gate(rolled_back).describe(),
        to_version=to_gate(target).describe(),
        restored_pvcs=restored,
    )


# --- Suspending -----------------------------------------------------------------------


async def _flux_targets(rp: RollbackPass) -> list[tuple[SuspendableKind, str, str]]:
    """The Kustomization applying the HelmRelease, the HelmRelease, its OCIRepository."""
    app = rp.need_app()
    hr_ns, hr_name = rp.hr_ref
    hr = await rp.ctx.kube.find(R.HELMRELEASE, hr_ns, hr_name)
    labels = ((hr or {}).get("metadata") or {}).get("labels") or {}
    ks_ref = app.spec.kustomization_ref
    ks_name = ks_ref.name if ks_ref else labels.get("kustomize.toolkit.fluxcd.io/name")
    ks_ns = (ks_ref.namespace if ks_ref else None) or labels.get(
        "kustomize.toolkit.fluxcd.io/namespace"
    ) or "flux-system"
    targets: list[tuple[SuspendableKind, str, str]] = []
    if ks_name:
        targets.append((SuspendableKind.KUSTOMIZATION, ks_ns, str(ks_name)))
    targets.append((SuspendableKind.HELM_RELEASE, hr_ns, hr_name))
    source = app.status.chart_source
    if source is not None and source.kind == "OCIRepository":
        targets.append((SuspendableKind.OCI_REPOSITORY, source.namespace, source.name))
    return targets


def suspended_by_person(obj: Obj) -> bool:
    notes = (obj.get("metadata") or {}).get("annotations") or {}
    held = ann.HELD in notes  # the gate's hold is not a person's suspend
    return bool((obj.get("spec") or {}).get("suspend")) and not held and SUSPENDED_BY not in notes


async def suspend(rp: RollbackPass) -> Outcome:
    """Record whether each Flux object was suspended (first, in status), then suspend it."""
    kube = rp.ctx.kube
    if not rp.status.suspended_states:
        states = []
        for kind, namespace, name in await _flux_targets(rp):
            obj = await kube.find(flux_resource(kind), namespace, name)
            if obj is not None:
                states.append(SuspendedState(kind, name, namespace, suspended_by_person(obj)))
        return Outcome.waiting(
            "recorded what is suspended; suspending Flux", suspended_states=tuple(states)
        )
    for state in rp.status.suspended_states:
        res = flux_resource(state.kind)
        obj = await kube.find(res, state.namespace, state.name)
        if obj is None:
            continue
        notes = (obj.get("metadata") or {}).get("annotations") or {}
        if (obj.get("spec") or {}).get("suspend") is not True or SUSPENDED_BY not in notes:
            await kube.merge_patch(res, state.namespace, state.name, {
                "metadata": {"annotations": {SUSPENDED_BY: rp.request_ref}},
                "spec": {"suspend": True},
            })
    names = ", ".join(f"{s.kind}/{s.name}" for s in rp.status.suspended_states)
    return Outcome.finished(f"suspended {names}")


# --- StoppingApp ----------------------------------------------------------------------


async def stop_app(rp: RollbackPass) -> Outcome:
    """Record replicas (first, in status), keep StatefulSet claims on scale-down, scale
    to zero, and wait until no pod uses a claim to restore."""
    kube = rp.ctx.kube
    app = rp.need_app()
    if not rp.status.recorded_replicas and app.status.workloads:
        recorded = []
        for wl in app.status.workloads:
            obj = await kube.find(workload_resource(wl.kind), wl.namespace, wl.name)
            if obj is None:
                continue
            before = ((obj.get("metadata") or {}).get("annotations") or {}).get(REPLICAS_BEFORE)
            replicas = (obj.get("spec") or {}).get("replicas")
            count = int(before) if before else (1 if replicas is None else int(replicas))
            recorded.append(WorkloadReplicas(wl.kind, wl.name, wl.namespace, count))
        if recorded:
            return Outcome.waiting(
                "recorded replicas; scaling the app to zero", recorded_replicas=tuple(recorded)
            )
    for rec in rp.status.recorded_replicas:
        res = workload_resource(rec.kind)
        obj = await kube.find(res, rec.namespace, rec.name)
        if obj is None:
            continue
        spec = obj.get("spec") or {}
        policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        if res is R.STATEFULSET and policy.get("whenScaled") == "Delete":
            # scaling down would delete the claims (and, with Delete reclaim, the data)
            await kube.merge_patch(res, rec.namespace, rec.name, {
                "metadata": {"annotations": {RETENTION_BEFORE: json.dumps(policy)}},
                "spec": {"persistentVolumeClaimRetentionPolicy": {"whenScaled": "Retain"}},
            })
        if spec.get("replicas") != 0:
            await kube.merge_patch(res, rec.namespace, rec.name, {
                "metadata": {"annotations": {REPLICAS_BEFORE: str(rec.replicas)}},
                "spec": {"replicas": 0},
            })
    users = await _pods_using_claims(rp)
    if users:
        return Outcome.waiting(f"waiting for pods {', '.join(sorted(users))} to stop")
    return Outcome.finished("the app is stopped; no pod uses its volumes")


async def _pods_using_claims(rp: RollbackPass) -> set[str]:
    claims: dict[str, set[str]] = {}
    for entry in rp.status.restored_pvcs:
        claims.setdefault(entry.namespace, set()).add(entry.name)
    users = set()
    for namespace, names in claims.items():
        for pod in await rp.ctx.kube.list(R.POD, namespace):
            for volume in (pod.get("spec") or {}).get("volumes") or []:
                claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
                if claim in names:
                    users.add(str(pod["metadata"]["name"]))
    return users


# --- RestoringVolumes -----------------------------------------------------------------


async def restore_volumes(rp: RollbackPass) -> Outcome:
    """Advance every PVC one safe step towards "recreated from its snapshot"."""
    kube = rp.ctx.kube
    entries = list(rp.status.restored_pvcs)
    pending: list[str] = []
    for i, entry in enumerate(entries):
        if entry.restored:
            continue
        snap = await kube.find(R.SNAPSHOT, entry.namespace, entry.snapshot)
        pvc = await kube.find(R.PVC, entry.namespace, entry.name)
        volume = ((pvc or {}).get("spec") or {}).get("volumeName") if pvc else (
            entry.retained_volume
        )
        pv = await kube.find(R.PV, None, str(volume)) if volume else None
        step, why = determine_restore_step(pvc, pv, snap, rp.request_id, entry.retained_volume)
        label = f"PVC {entry.namespace}/{entry.name}"
        if step is RestoreStep.DONE:
            entries[i] = dataclasses.replace(entry, restored=True)
            continue
        pending.append(f"{label}: {why}")
        if step is RestoreStep.BLOCKED:
            return Outcome.failed(
                Reason.RESTORE_FAILED,
                f"{label}: {why}; restore it by hand from VolumeSnapshot {entry.snapshot}",
                restored_pvcs=tuple(entries),
            )
        if step is RestoreStep.RETAIN_VOLUME:
            if pvc is None or snap is None or pv is None:  # the step needs all three
                raise FluxUpError(f"{label}: claim, volume or snapshot vanished; retrying")
            size = determine_snapshot_status(snap).restore_size or None
            claim = build_restored_pvc(pvc, entry.snapshot, size, rp.request_id)
            await kube.merge_patch(R.PV, None, str(volume),
                                   build_retained_volume_patch(rp.name, claim))
        elif step is RestoreStep.RECORD_VOLUME:
            entries[i] = dataclasses.replace(entry, retained_volume=str(volume))
        elif step is RestoreStep.DELETE_CLAIM:
            await kube.delete(R.PVC, entry.namespace, entry.name)
        elif step is RestoreStep.CREATE_CLAIM:
            recorded = parse_restore_claim(pv) if pv is not None else None
            if recorded is None:  # the step is only chosen with the claim recorded
                raise FluxUpError(f"{label}: the retained volume no longer records the claim "
                                  "to create; retrying")
            # observed absent above; a conflict means a racing pass created it already
            with contextlib.suppress(KubeConflict):
                await kube.create(R.PVC, entry.namespace, _claim_body(recorded))
    if not pending:
        return Outcome.finished(
            f"{len(entries)} PVC(s) recreated from their snapshots", restored_pvcs=tuple(entries)
        )
    return Outcome.waiting("; ".join(pending), restored_pvcs=tuple(entries))


def _claim_body(claim: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", **{
        k: v for k, v in claim.items() if k not in ("apiVersion", "kind")
    }}
