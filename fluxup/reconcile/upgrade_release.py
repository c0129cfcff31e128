"""Releasing, Upgrading and HealthChecking: helm-controller runs the new version.

:func:`release` approves exactly the identity the gate holds (the release record first,
then the OCIRepository and HelmRelease), un-suspends them and gives the writers their
replicas back; :func:`await_upgrade` waits for helm-controller to report the new version
Ready (releasing a late hold again); :func:`health_check` waits for the app's workloads.
"""

from __future__ import annotations

from fluxup.adapters import flux
from fluxup.adapters.kube import Obj, R, Resource
from fluxup.api import annotations as ann
from fluxup.api.conditions import Reason
from fluxup.api.constants import UPGRADE_REQUEST
from fluxup.logic.helm_status import HelmState, determine_helm_progress
from fluxup.logic.identity import Identity as GateIdentity
from fluxup.logic.identity import build_approval
from fluxup.logic.targets import to_gate
from fluxup.reconcile.health import determine_unhealthy
from fluxup.reconcile.release_gate import RELEASE_HELD, approve_release
from fluxup.reconcile.upgrade_pass import (
    Outcome,
    Pass,
    annotation,
    held_identity,
    helm_release,
    hr_part,
    oci_repository,
)
from fluxup.reconcile.upgrade_protect import restore_replicas

__all__ = ["await_upgrade", "health_check", "release", "request_ref"]

UPGRADE_REQUEST_KIND = UPGRADE_REQUEST.kind


# --- Releasing ----------------------------------------------------------------------


async def release(p: Pass) -> Outcome:
    """Approve exactly the held identity, un-suspend, give writers their replicas back."""
    kube = p.ctx.kube
    target = p.target()
    hr_namespace, hr_name = p.hr_ref
    await approve_release(  # line 2 first: helm-controller may run as soon as line 1 lets go
        p.ctx, p.namespace, p.app.metadata.name or "", request_ref(p),
        p.ur.metadata.annotations.get(RELEASE_HELD), target.version,
        {i.values_path: i.tag for i in target.images},
    )
    oci = await oci_repository(p)
    if p.via_chart_ref and oci is not None and target.version:
        await _approve(p, R.OCIREPOSITORY, oci, GateIdentity(chart=target.version))
    hr = await helm_release(p)
    if hr is not None:
        await _approve(p, R.HELMRELEASE, hr, hr_part(target, p.via_chart_ref))
    await restore_replicas(p)
    await flux.request_retry(kube, hr_namespace, hr_name)
    return Outcome.finished("released to helm-controller")


def request_ref(p: Pass) -> str:
    """This request as approvals and release records name it: ``kind/namespace/name``."""
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
    approval = build_approval(identity, request_ref(p))
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

