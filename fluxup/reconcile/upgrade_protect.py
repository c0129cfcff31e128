"""Quiescing and Snapshotting: the app's data is made safe before the new version runs.

:func:`quiesce` records the writers' replicas in the request's status first, then scales
them to zero and waits for their pods to stop; :func:`restore_replicas` gives them back
(on release, failure or deletion). :func:`snapshot` creates one VolumeSnapshot per PVC
under a deterministic name and waits until all are ReadyToUse.
"""

from __future__ import annotations

from fluxup.adapters.kube import R, Resource
from fluxup.api.meta import WorkloadKind, WorkloadReplicas
from fluxup.api.upgraderequest import SnapshotStatus
from fluxup.errors import KubeConflict
from fluxup.logic import snapshots
from fluxup.logic.rollback_plan import build_previous_identity_annotation
from fluxup.logic.targets import to_gate
from fluxup.logic.upgrade_status import describe_snapshot_errors
from fluxup.reconcile.upgrade_pass import Outcome, Pass, helm_release

__all__ = ["quiesce", "restore_replicas", "snapshot"]


# --- Quiescing ----------------------------------------------------------------------


def _workload_res(kind: WorkloadKind) -> Resource:
    return R.STATEFULSET if kind is WorkloadKind.STATEFUL_SET else R.DEPLOYMENT


async def quiesce(p: Pass) -> Outcome:
    """Record the writers' replicas (first, in status), then scale them to zero."""
    kube = p.ctx.kube
    if not p.status.quiesced_replicas:
        refs = [(w.kind, w.name, w.namespace) for w in p.app.spec.quiesce.workloads] or [
            (w.kind, w.name, w.namespace) for w in p.app.status.workloads
        ]
        recorded = []
        hr = await helm_release(p)  # a workload without namespace lives where Helm installs
        default = ((hr or {}).get("spec") or {}).get("targetNamespace") or p.hr_ref[0]
        for kind, name, ref_namespace in refs:
            namespace = ref_namespace or default
            obj = await kube.get(_workload_res(kind), namespace, name)
            replicas = (obj.get("spec") or {}).get("replicas")
            recorded.append(
                WorkloadReplicas(kind, name, namespace, 1 if replicas is None else int(replicas))
            )
        if recorded:
            return Outcome.waiting(
                "recorded replicas; scaling writers to zero", quiesced_replicas=tuple(recorded)
            )
        return Outcome.finished("no workloads to quiesce")
    busy = []
    for rec in p.status.quiesced_replicas:
        res = _workload_res(rec.kind)
        obj = await kube.get(res, rec.namespace, rec.name)
        if (obj.get("spec") or {}).get("replicas") != 0:
            await kube.merge_patch(res, rec.namespace, rec.name, {"spec": {"replicas": 0}})
            busy.append(rec.name)
        elif int((obj.get("status") or {}).get("replicas") or 0) > 0:
            busy.append(rec.name)
    if busy:
        return Outcome.waiting(f"waiting for pods of {', '.join(busy)} to stop")
    return Outcome.finished("writers stopped")


async def restore_replicas(p: Pass) -> None:
    """Scale the quiesced writers back to the replicas recorded in status."""
    for rec in p.status.quiesced_replicas:
        await p.ctx.kube.merge_patch(
            _workload_res(rec.kind), rec.namespace, rec.name, {"spec": {"replicas": rec.replicas}}
        )


# --- Snapshotting -------------------------------------------------------------------


async def snapshot(p: Pass) -> Outcome:
    """Create one VolumeSnapshot per PVC (deterministic names) and wait for ReadyToUse."""
    kube = p.ctx.kube
    version = to_gate(p.target()).describe()
    seen: list[SnapshotStatus] = []
    for pvc in p.app.status.pvcs:
        body = snapshots.build_snapshot(
            pvc.namespace,
            p.ur.metadata.name or "",
            p.app.metadata.name or "",
            pvc.name,
            p.app.status.volume_snapshot_class_name,
            version,
            build_previous_identity_annotation(p.status.previous_identity)
            if p.status.previous_identity
            else None,
        )
        name = body["metadata"]["name"]
        obj = await kube.find(R.SNAPSHOT, pvc.namespace, name)
        if obj is None:
            try:
                obj = await kube.create(R.SNAPSHOT, pvc.namespace, body)
            except KubeConflict:
                obj = await kube.get(R.SNAPSHOT, pvc.namespace, name)
        state = snapshots.determine_snapshot_status(obj)
        seen.append(
            SnapshotStatus(
                name=name,
                namespace=pvc.namespace,
                pvc=pvc.name,
                ready_to_use=state.state is snapshots.SnapshotState.READY,
                restore_size=state.restore_size or None,
                error=state.message if state.state is snapshots.SnapshotState.FAILED else None,
            )
        )
    ready = sum(s.ready_to_use for s in seen)
    if ready < len(seen):
        # an error on a snapshot is not final: the CSI snapshotter retries CreateSnapshot
        # with backoff (a busy array answers DeadlineExceeded, then succeeds); the request
        # fails only when spec.timeouts.snapshot passes (determine_deadline_failure)
        errors = describe_snapshot_errors(tuple(seen))
        retrying = f"; the CSI snapshotter retries: {errors}" if errors else ""
        return Outcome.waiting(f"{ready}/{len(seen)} snapshots ReadyToUse{retrying}",
                               snapshots=tuple(seen))
    return Outcome.finished(f"{ready} snapshot(s) ReadyToUse", snapshots=tuple(seen))

