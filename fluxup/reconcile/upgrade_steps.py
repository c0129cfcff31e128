"""The action of each UpgradeRequest phase: small, idempotent, named for what it does.

Called only by :mod:`fluxup.reconcile.upgrade`, which owns the phase table, deadlines
and the one status write per pass. Each action observes first and acts only when its
effect is missing (deterministic snapshot names, "is the commit already there?",
replicas recorded in status before scaling), so re-running it after a crash is safe.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fluxup.adapters import flux
from fluxup.adapters.kube import Obj, R, Resource
from fluxup.api import annotations as ann
from fluxup.api._codec import encode
from fluxup.api.conditions import Reason
from fluxup.api.constants import UPGRADE_REQUEST
from fluxup.api.managedapp import LastUpgrade, RequestKind
from fluxup.api.meta import Identity, WorkloadKind, WorkloadReplicas
from fluxup.api.upgraderequest import (
    Origin,
    SnapshotStatus,
    UpgradePhase,
    UpgradeRequest,
)
from fluxup.errors import FluxUpError, InvalidObjectError, KubeConflict
from fluxup.logic import commitmsg, snapshots
from fluxup.logic.helm_status import HelmState, determine_helm_progress
from fluxup.logic.identity import GatedKind, approved_identity, build_approval, determine_desired
from fluxup.logic.identity import Identity as GateIdentity
from fluxup.logic.rollback_plan import build_previous_identity_annotation
from fluxup.logic.targets import to_gate
from fluxup.logic.upgrade_status import describe_snapshot_errors
from fluxup.reconcile.approvals import end_approvals
from fluxup.reconcile.context import Context
from fluxup.reconcile.health import determine_unhealthy
from fluxup.reconcile.release_gate import (
    HELD_AT,
    HELD_AT_RELEASE_RECORD,
    RELEASE_HELD,
    approve_release,
    end_release_approval,
)
from fluxup.reconcile.retention import prune_snapshots
from fluxup.reconcile.upgrade_pass import (
    Outcome,
    Pass,
    annotation,
    has_change,
    held_identity,
    helm_release,
    hr_part,
    kustomization_ref,
    load_app,
    oci_repository,
)
from fluxup.reconcile.upgrade_preflight import git_changes

__all__ = [
    "acquire",
    "await_apply",
    "await_upgrade",
    "commit",
    "finish",
    "free_app_lock",
    "health_check",
    "quiesce",
    "release",
    "snapshot",
    "undo",
]

UPGRADE_REQUEST_KIND = UPGRADE_REQUEST.kind

#: How long AwaitingApply waits after asking Flux to reconcile before asking again.
REAPPLY_AFTER = dt.timedelta(seconds=20)



# --- Pending / Queued ---------------------------------------------------------------


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


# --- Committing ---------------------------------------------------------------------


async def commit(p: Pass) -> Outcome:
    """Commit the bump to Git once (found again by its trailer), then ask Flux to apply."""
    git_source = p.app.status.git
    if git_source is None:
        raise FluxUpError(
            f"ManagedApp {p.app.metadata.name} has no Git source yet (status.git); "
            "check its Discovered condition"
        )
    git = await p.ctx.open_git(git_source, p.app.metadata.namespace or "")
    sha = await git.find_commit(commitmsg.TRAILER_UPGRADE_REQUEST, p.request_id)
    target = p.target()
    if sha is None:
        changes = await git_changes(p, target)
        if changes:
            names = [
                snapshots.build_snapshot_name(p.ur.metadata.name or "", pvc.name)
                for pvc in p.app.status.pvcs
            ]
            message = commitmsg.build_commit_message(
                p.app.metadata.name or "",
                to_gate(target).describe(),
                to_gate(p.status.previous_identity or Identity()).describe(),
                p.request_id,
                names,
            )
            result = await git.commit_files({k: v[1] for k, v in changes.items()}, message)
            sha = result.sha
    await _request_flux_apply(p)
    return Outcome.finished(
        f"committed {sha[:12]}" if sha else "Git already had the target",
        git_commit=sha,
        apply_requested_at=p.ctx.now(),
    )


async def _request_flux_apply(p: Pass) -> None:
    kube = p.ctx.kube
    ref = kustomization_ref(p, await helm_release(p))
    if ref is None:
        return
    ks_ns, ks_name = ref
    ks = await kube.find(R.KUSTOMIZATION, ks_ns, ks_name)
    if ks is None:
        return
    source = (ks.get("spec") or {}).get("sourceRef") or {}
    if source.get("kind", "GitRepository") == "GitRepository":
        await flux.request_reconcile(
            kube, R.GITREPOSITORY, source.get("namespace") or ks_ns, str(source.get("name"))
        )
    await flux.request_reconcile(kube, R.KUSTOMIZATION, ks_ns, ks_name)


# --- AwaitingApply ------------------------------------------------------------------


async def await_apply(p: Pass) -> Outcome:
    """Wait until Flux applied the change and the gate holds it (or it was approved)."""
    if p.ur.metadata.annotations.get(HELD_AT) == HELD_AT_RELEASE_RECORD:
        return Outcome.finished("the release-record gate holds the new revision")
    target = p.target()
    hr = await helm_release(p)
    oci = await oci_repository(p)
    part = hr_part(target, p.via_chart_ref)
    pending = []
    if has_change(part) and not _arrived(hr, part):
        pending.append("HelmRelease")
    if p.via_chart_ref and target.version and not _arrived(oci, GateIdentity(chart=target.version)):
        pending.append("OCIRepository")
    if not pending:
        return Outcome.finished("the gate holds the new version")
    message = f"waiting for Flux to apply {' and '.join(pending)}"
    now = p.ctx.now()
    asked = p.status.apply_requested_at
    if p.ur.spec.origin is not Origin.GIT and (asked is None or now >= asked + REAPPLY_AFTER):
        await _request_flux_apply(p)  # Flux may have fetched before the commit landed
        return Outcome.waiting(message, apply_requested_at=now)
    return Outcome.waiting(message)


def _arrived(obj: Obj | None, part: GateIdentity) -> bool:
    """The object asks for ``part``: held by the gate, or already approved for it."""
    held = held_identity(obj)
    if held is not None and part.satisfies(held):
        return True
    approved = approved_identity(obj)
    return approved is not None and part.satisfies(approved)


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


async def _restore_replicas(p: Pass) -> None:
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


# --- Releasing ----------------------------------------------------------------------


async def release(p: Pass) -> Outcome:
    """Approve exactly the held identity, un-suspend, give writers their replicas back."""
    kube = p.ctx.kube
    target = p.target()
    hr_namespace, hr_name = p.hr_ref
    await approve_release(  # line 2 first: helm-controller may run as soon as line 1 lets go
        p.ctx, p.namespace, p.app.metadata.name or "", _request_ref(p),
        p.ur.metadata.annotations.get(RELEASE_HELD), target.version,
        {i.values_path: i.tag for i in target.images},
    )
    oci = await oci_repository(p)
    if p.via_chart_ref and oci is not None and target.version:
        await _approve(p, R.OCIREPOSITORY, oci, GateIdentity(chart=target.version))
    hr = await helm_release(p)
    if hr is not None:
        await _approve(p, R.HELMRELEASE, hr, hr_part(target, p.via_chart_ref))
    await _restore_replicas(p)
    await flux.request_retry(kube, hr_namespace, hr_name)
    return Outcome.finished("released to helm-controller")


def _request_ref(p: Pass) -> str:
    return f"{UPGRADE_REQUEST_KIND}/{p.namespace}/{p.ur.metadata.name or ''}"


async def _approve(p: Pass, res: Resource, obj: Obj, part: GateIdentity) -> None:
    """Approve this request's identity on line 1 and un-suspend. Also when nothing is held
    right now: the approval must be there before helm-controller's status catches up, or
    the next write to the object (our own retry request included) would be held again
    while the stored status still names the old version."""
    meta = obj["metadata"]
    held = held_identity(obj)
    suspended = bool((obj.get("spec") or {}).get("suspend"))
    identity = held if held is not None and part.satisfies(held) else part
    approval = build_approval(identity, _request_ref(p))
    if annotation(obj, ann.APPROVED) == approval and not suspended:
        return
    await flux.approve_and_release(
        p.ctx.kube, res, meta["namespace"], meta["name"], approval, p.ur.metadata.name or ""
    )


# --- Upgrading ----------------------------------------------------------------------


async def await_upgrade(p: Pass) -> Outcome:
    """Wait for helm-controller to report Ready for the new version, generation current;
    a failed attempt ends the request only once helm-controller's remediation gave up."""
    hr = await helm_release(p)
    if hr is None:
        return Outcome.failed(Reason.UPGRADE_FAILED, "HelmRelease disappeared during upgrade")
    target = p.target()
    held = held_identity(hr)
    part = hr_part(target, p.via_chart_ref)
    if hr.get("spec", {}).get("suspend") and held is not None and part.satisfies(held):
        # held again after release (a write raced helm-controller's status): this
        # request's snapshots cover the held identity, so release it again
        await _approve(p, R.HELMRELEASE, hr, part)
        return Outcome.waiting("released the HelmRelease again after a late hold")
    progress = determine_helm_progress(hr, target.version)
    if progress.state is HelmState.RELEASED:
        return Outcome.finished(f"helm-controller released {to_gate(target).describe()}")
    if progress.state is HelmState.FAILED:
        return Outcome.failed(Reason.UPGRADE_FAILED, progress.message)
    return Outcome.waiting(progress.message)


# --- HealthChecking -----------------------------------------------------------------


async def health_check(p: Pass) -> Outcome:
    """Every workload of the app ready with its new spec; then the optional HTTP check."""
    problem = await determine_unhealthy(p.ctx.kube, p.app)
    if problem is not None:
        return Outcome.waiting(problem)
    return Outcome.finished("upgrade succeeded; workloads healthy")


# --- End ----------------------------------------------------------------------------


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
        await _restore_replicas(p)
    await end_approvals(p.ctx, _request_ref(p), [await helm_release(p), await oci_repository(p)])
    await end_release_approval(
        p.ctx, p.namespace, p.app.metadata.name or "", _request_ref(p),
        succeeded and not p.ur.spec.dry_run,
    )
    await _free_lock(p, succeeded)
    if succeeded and not p.ur.spec.dry_run:
        await prune_snapshots(p.ctx, p.app, p.ur.metadata.name)


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


async def _free_lock(p: Pass, succeeded: bool | None) -> None:
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
        await _restore_replicas(p)
    await end_approvals(ctx, _request_ref(p), [await helm_release(p), await oci_repository(p)])
    await end_release_approval(ctx, p.namespace, app.metadata.name or "", _request_ref(p), False)
    # recorded as failed, so the hold of its target is not silently re-run (holds.py)
    await _free_lock(p, False if ur.status.target_identity is not None else None)
