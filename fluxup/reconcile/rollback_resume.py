"""The second half of a rollback: revert Git, let Flux release the previous version
through the gate, start the app, check its health; and how a rollback ends.

Called only by :mod:`fluxup.reconcile.rollback`. The Git commit is made once (found
again by its ``Rollback-Request`` trailer after a crash). Resuming approves the
rollback identity on both lines of the gate (Helm's release record on the ManagedApp,
``fluxup.dev/approved`` on the HelmRelease/OCIRepository) *before* it resumes Flux, so
the reverted version is let through and nothing else is.
"""

from __future__ import annotations

import json

from fluxup.adapters import flux
from fluxup.adapters.kube import Obj, R
from fluxup.api import annotations as ann
from fluxup.api.conditions import Reason
from fluxup.api.meta import Identity
from fluxup.api.rollbackrequest import RollbackPhase, SuspendableKind, SuspendedState
from fluxup.errors import GitConflictError, GitNotFoundError
from fluxup.logic import commitmsg
from fluxup.logic.helm_status import HelmState, determine_helm_progress
from fluxup.logic.identity import (
    GatedKind,
    approval_of,
    build_approval,
    determine_desired,
    parse_identity,
)
from fluxup.logic.identity import Identity as GateIdentity
from fluxup.logic.rollback_machine import ORDER
from fluxup.logic.rollback_plan import build_rollback_approval
from fluxup.logic.targets import to_gate
from fluxup.reconcile.approvals import end_approvals
from fluxup.reconcile.health import determine_unhealthy, workload_resource
from fluxup.reconcile.release_gate import approve_release, end_release_approval
from fluxup.reconcile.rollback_pass import RollbackPass
from fluxup.reconcile.rollback_steps import (
    REPLICAS_BEFORE,
    RETENTION_BEFORE,
    SUSPENDED_BY,
    flux_resource,
    suspended_by_person,
)
from fluxup.reconcile.upgrade_pass import Outcome, hr_part
from fluxup.reconcile.upgrade_preflight import build_git_changes

__all__ = ["finish", "health_check", "resume", "revert_git", "start_app", "undo"]

_GATED = {
    SuspendableKind.HELM_RELEASE: GatedKind.HELM_RELEASE,
    SuspendableKind.OCI_REPOSITORY: GatedKind.OCI_REPOSITORY,
}

# --- RevertingGit ---------------------------------------------------------------------


async def revert_git(rp: RollbackPass) -> Outcome:
    """Revert the upgrade's commit; commit the previous version forward when the revert
    conflicts or the upgrade had no FluxUp commit (a plain ``git push``)."""
    app = rp.need_app()
    git_source = app.status.git
    if git_source is None:
        return Outcome.failed(
            Reason.COMMIT_FAILED,
            f"ManagedApp {app.metadata.name} has no Git source (status.git); check its "
            "Discovered condition",
        )
    git = await rp.ctx.open_git(git_source, app.metadata.namespace or "")
    done = await git.find_commit(commitmsg.TRAILER_ROLLBACK_REQUEST, rp.request_id)
    if done is not None:  # committed before a restart: a revert or a forward commit
        return Outcome.finished(f"Git reverted in {done[:12]} (found after a restart)",
                                Reason.REVERTED, revert_commit=done)
    ur = rp.ur
    upgrade_commit = ur.status.git_commit if ur is not None else None
    if upgrade_commit is None and rp.status.upgrade_request:
        upgrade_commit = await git.find_commit(
            commitmsg.TRAILER_UPGRADE_REQUEST, f"{rp.namespace}/{rp.status.upgrade_request}"
        )
    target = to_gate(rp.target()).describe()
    rolled_back = rp.status.from_version or "the upgraded version"
    conflict = ""
    if upgrade_commit:
        message = commitmsg.build_rollback_message(
            app.metadata.name, target, rolled_back, rp.request_id, upgrade_commit
        )
        try:
            result = await git.revert(upgrade_commit, message)
        except (GitConflictError, GitNotFoundError) as exc:
            # conflicts with later changes, or no longer on the branch (rewritten history)
            conflict = f"cannot revert {upgrade_commit[:12]} ({exc}); "
        else:
            if not result.created:
                return Outcome.finished(f"{upgrade_commit[:12]} was already reverted in Git",
                                        Reason.GIT_UNCHANGED)
            return Outcome.finished(f"reverted {upgrade_commit[:12]} in {result.sha[:12]}",
                                    Reason.REVERTED, revert_commit=result.sha)
    changes = await build_git_changes(rp.ctx, app, rp.target())
    if not changes:
        return Outcome.finished(f"{conflict}Git already has {target}", Reason.GIT_UNCHANGED)
    message = commitmsg.build_rollback_message(
        app.metadata.name, target, rolled_back, rp.request_id, None
    )
    result = await git.commit_files({path: new for path, (_, new) in changes.items()}, message)
    return Outcome.finished(
        f"{conflict}committed {target} forward in {result.sha[:12]}",
        Reason.REVERT_CONFLICT if conflict else Reason.COMMITTED_FORWARD,
        revert_commit=result.sha,
    )


# --- Resuming -------------------------------------------------------------------------


def _state(rp: RollbackPass, kind: SuspendableKind) -> SuspendedState | None:
    return next((s for s in rp.status.suspended_states if s.kind is kind), None)


def _part(rp: RollbackPass, kind: SuspendableKind) -> GateIdentity:
    target = rp.target()
    if kind is SuspendableKind.OCI_REPOSITORY:
        return GateIdentity(chart=target.version)
    return hr_part(target, rp.via_chart_ref)


def _notes(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


async def _resume_flux_object(rp: RollbackPass, state: SuspendedState, approve: str | None) -> None:
    """Give ``state``'s object back its suspend state (approving ``approve`` with it)."""
    res = flux_resource(state.kind)
    if approve is not None and not state.was_suspended:
        await flux.approve_and_release(rp.ctx.kube, res, state.namespace, state.name,
                                       build_approval(approve, rp.request_ref), rp.name)
    patch: Obj = {"metadata": {"annotations": {SUSPENDED_BY: None}}}
    if not state.was_suspended:
        patch["spec"] = {"suspend": False}
    await rp.ctx.kube.merge_patch(res, state.namespace, state.name, patch)


async def resume(rp: RollbackPass) -> Outcome:
    """Approve the rollback identity on both lines, resume the Kustomization, wait for
    Flux to apply the reverted objects, release them, wait for helm-controller."""
    kube = rp.ctx.kube
    app = rp.need_app()
    target = rp.target()
    await approve_release(  # line 2 first: helm-controller runs as soon as line 1 lets go
        rp.ctx, rp.namespace, app.metadata.name, rp.request_ref, None, target.version,
        {i.values_path: i.tag for i in target.images},
    )
    gated = [s for s in rp.status.suspended_states if s.kind in _GATED]
    objects: dict[SuspendableKind, Obj] = {}
    arrived: dict[SuspendableKind, str] = {}
    for state in gated:
        obj = await kube.find(flux_resource(state.kind), state.namespace, state.name)
        if obj is None:
            continue
        objects[state.kind] = obj
        part = _part(rp, state.kind)
        desired = determine_desired(_GATED[state.kind], obj).identity
        held = _notes(obj).get(ann.HELD)
        if held and _held_satisfies(part, held):
            arrived[state.kind] = held
        elif part.satisfies(desired):
            arrived[state.kind] = desired.to_json()
        else:
            approval = build_approval(build_rollback_approval(desired, part), rp.request_ref)
            if _notes(obj).get(ann.APPROVED) != approval:
                await kube.merge_patch(flux_resource(state.kind), state.namespace, state.name, {
                    "metadata": {"annotations": {ann.APPROVED: approval,
                                                 ann.UPGRADE_REQUEST: rp.name}}})
    ks = _state(rp, SuspendableKind.KUSTOMIZATION)
    if ks is not None:
        obj = await kube.find(R.KUSTOMIZATION, ks.namespace, ks.name)
        if obj is not None and SUSPENDED_BY in _notes(obj):
            await _resume_flux_object(rp, ks, None)
            await _request_apply(rp, obj)
        elif obj is not None and len(arrived) < len(objects) and _every_20s(rp):
            await _request_apply(rp, obj)
    waiting = [k.value for k in objects if k not in arrived]
    if waiting:
        return Outcome.waiting(f"waiting for Flux to apply the reverted {', '.join(waiting)}")
    for kind in (SuspendableKind.OCI_REPOSITORY, SuspendableKind.HELM_RELEASE):
        found, obj = _state(rp, kind), objects.get(kind)
        if found is None or obj is None or SUSPENDED_BY not in _notes(obj):
            continue
        await _resume_flux_object(rp, found, arrived[kind])
        if kind is SuspendableKind.HELM_RELEASE:
            await flux.request_retry(kube, found.namespace, found.name)
            return Outcome.waiting("released the previous version to helm-controller")
    hr = objects.get(SuspendableKind.HELM_RELEASE)
    if hr is None:
        return Outcome.failed(Reason.ROLLBACK_FAILED, "the HelmRelease disappeared")
    progress = determine_helm_progress(hr, target.version)
    if progress.state is HelmState.FAILED:
        return Outcome.failed(Reason.ROLLBACK_FAILED, progress.message)
    if progress.state is HelmState.WAITING:
        if suspended_by_person(hr):
            meta = hr.get("metadata") or {}
            return Outcome.waiting(
                f"HelmRelease {meta.get('namespace')}/{meta.get('name')} was suspended by "
                "someone else while the rollback released it; resume it (flux resume "
                "helmrelease) so helm-controller can install the previous version"
            )
        return Outcome.waiting(progress.message)
    return Outcome.finished(f"helm-controller released {to_gate(target).describe()}")


def _held_satisfies(part: GateIdentity, held: str) -> bool:
    try:
        return part.satisfies(parse_identity(held))
    except ValueError:
        return False


def _every_20s(rp: RollbackPass) -> bool:
    started = rp.status.phase_started_at or rp.ctx.now()
    return (rp.ctx.now() - started).total_seconds() % 20 < 1.5


async def _request_apply(rp: RollbackPass, ks: Obj) -> None:
    kube = rp.ctx.kube
    meta = ks["metadata"]
    source = (ks.get("spec") or {}).get("sourceRef") or {}
    if source.get("kind", "GitRepository") == "GitRepository":
        await flux.request_reconcile(kube, R.GITREPOSITORY,
                                     source.get("namespace") or meta["namespace"],
                                     str(source.get("name")))
    await flux.request_reconcile(kube, R.KUSTOMIZATION, meta["namespace"], meta["name"])


# --- StartingApp / HealthChecking -----------------------------------------------------


async def _restore_workloads(rp: RollbackPass) -> None:
    """Replicas and StatefulSet claim retention back as they were before the rollback."""
    kube = rp.ctx.kube
    for rec in rp.status.recorded_replicas:
        res = workload_resource(rec.kind)
        obj = await kube.find(res, rec.namespace, rec.name)
        if obj is None:
            continue
        notes = _notes(obj)
        patch: Obj = {}
        if (obj.get("spec") or {}).get("replicas") != rec.replicas:
            patch["spec"] = {"replicas": rec.replicas}
        if RETENTION_BEFORE in notes:
            try:
                policy = json.loads(notes[RETENTION_BEFORE])
            except ValueError:
                policy = None
            if isinstance(policy, dict):
                patch.setdefault("spec", {})["persistentVolumeClaimRetentionPolicy"] = policy
        if REPLICAS_BEFORE in notes or RETENTION_BEFORE in notes:
            patch["metadata"] = {"annotations": {REPLICAS_BEFORE: None, RETENTION_BEFORE: None}}
        if patch:
            await kube.merge_patch(res, rec.namespace, rec.name, patch)


async def start_app(rp: RollbackPass) -> Outcome:
    """Give every workload its recorded replica count back."""
    await _restore_workloads(rp)
    count = len(rp.status.recorded_replicas)
    return Outcome.finished(f"{count} workload(s) given their replicas back")


async def health_check(rp: RollbackPass) -> Outcome:
    problem = await determine_unhealthy(rp.ctx.kube, rp.need_app())
    if problem is not None:
        return Outcome.waiting(problem)
    return Outcome.finished(
        f"rolled back to {to_gate(rp.target()).describe()}; workloads healthy"
    )


# --- End ------------------------------------------------------------------------------


async def finish(rp: RollbackPass) -> None:
    """Success: record what runs as released, line 2's approval becomes deployed, free
    the lock."""
    kube = rp.ctx.kube
    hr_ns, hr_name = rp.hr_ref
    hr = await kube.find(R.HELMRELEASE, hr_ns, hr_name)
    if hr is not None:
        released = determine_desired(GatedKind.HELM_RELEASE, hr).identity
        part = hr_part(rp.target(), rp.via_chart_ref)
        await flux.mark_released(kube, R.HELMRELEASE, hr_ns, hr_name,
                                 (released if part.satisfies(released) else part).to_json())
    await end_approvals(rp.ctx, rp.request_ref, [hr, *await _gated_objects(rp)])
    await end_release_approval(rp.ctx, rp.namespace, rp.need_app().metadata.name,
                               rp.request_ref, True)
    await _free_lock(rp)


async def _gated_objects(rp: RollbackPass) -> list[Obj | None]:
    """The OCIRepository the rollback suspended and approved, as it is now."""
    return [await rp.ctx.kube.find(flux_resource(s.kind), s.namespace, s.name)
            for s in rp.status.suspended_states if s.kind is SuspendableKind.OCI_REPOSITORY]


def _data_touched(rp: RollbackPass) -> bool:
    return any(e.retained_volume for e in rp.status.restored_pvcs)


async def undo(rp: RollbackPass, failed_in: RollbackPhase, deleted: bool) -> str:
    """A rollback that failed or was deleted gives back what it holds; returns what it
    left behind, for the message.

    Before any claim was replaced (or when a person deleted the request) Flux's suspend
    states and the replicas are restored. Once volumes were replaced, a failure leaves
    the app stopped and Flux suspended, so nothing runs the new version on the restored
    data; a new RollbackRequest picks up from there.
    """
    if rp.app is None:
        return ""
    kube = rp.ctx.kube
    left = ""
    stopped = ORDER.index(failed_in) > ORDER.index(RollbackPhase.STOPPING_APP) if (
        failed_in in ORDER
    ) else False
    if deleted or not (_data_touched(rp) and stopped):
        for state in rp.status.suspended_states:
            res = flux_resource(state.kind)
            obj = await kube.find(res, state.namespace, state.name)
            if obj is None:
                continue
            notes = _notes(obj)
            patch: Obj = {"metadata": {"annotations": {SUSPENDED_BY: None}}}
            approval = approval_of(obj)
            if approval is not None and approval.request == rp.request_ref:
                patch["metadata"]["annotations"][ann.APPROVED] = None
            if SUSPENDED_BY in notes and not state.was_suspended:
                patch["spec"] = {"suspend": False}
            await kube.merge_patch(res, state.namespace, state.name, patch)
        await _restore_workloads(rp)
    else:
        left = (
            "; the app stays stopped and Flux suspended so nothing runs on half-restored "
            "data: fix the cause and create a new RollbackRequest"
        )
    hr_ns, hr_name = rp.hr_ref
    await end_approvals(rp.ctx, rp.request_ref,
                        [await kube.find(R.HELMRELEASE, hr_ns, hr_name), *await _gated_objects(rp)])
    await end_release_approval(rp.ctx, rp.namespace, rp.app.metadata.name, rp.request_ref,
                               False)
    await _free_lock(rp)
    retained = [e.retained_volume for e in rp.status.restored_pvcs if e.retained_volume]
    if retained:
        left += f"; the replaced data is kept in volume(s) {', '.join(retained)}"
    return left


async def _free_lock(rp: RollbackPass) -> None:
    app = rp.need_app()
    obj = await rp.ctx.kube.find(R.MANAGEDAPP, app.metadata.namespace, app.metadata.name)
    active = ((obj or {}).get("status") or {}).get("activeRequest") or {}
    if active.get("kind") == "RollbackRequest" and active.get("name") == rp.name:
        await rp.ctx.kube.merge_patch(R.MANAGEDAPP, app.metadata.namespace, app.metadata.name,
                                      {"status": {"activeRequest": None}}, sub="status")


def describe_identity(identity: Identity | None) -> str:
    return to_gate(identity or Identity()).describe()
