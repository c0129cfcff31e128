"""Committing and AwaitingApply: the bump goes to Git once, then Flux applies it.

:func:`commit` finds its commit again by the request's trailer before writing one, so a
pass re-run after a crash never commits twice; it then asks Flux to reconcile the
Kustomization (and its GitRepository) at once instead of at their next interval.
:func:`await_apply` waits until the gate holds the new version on the HelmRelease and
OCIRepository, asking Flux again every :data:`REAPPLY_AFTER` for requests FluxUp
committed itself.
"""

from __future__ import annotations

import datetime as dt

from fluxup.adapters import flux
from fluxup.adapters.kube import Obj, R
from fluxup.api.meta import Identity
from fluxup.api.upgraderequest import Origin
from fluxup.errors import FluxUpError
from fluxup.logic import commitmsg, snapshots
from fluxup.logic.identity import Identity as GateIdentity
from fluxup.logic.identity import approved_identity
from fluxup.logic.targets import to_gate
from fluxup.reconcile.release_gate import HELD_AT, HELD_AT_RELEASE_RECORD
from fluxup.reconcile.upgrade_pass import (
    Outcome,
    Pass,
    has_change,
    held_identity,
    helm_release,
    hr_part,
    kustomization_ref,
    oci_repository,
)
from fluxup.reconcile.upgrade_preflight import git_changes

__all__ = ["REAPPLY_AFTER", "await_apply", "commit"]

#: How long AwaitingApply waits after asking Flux to reconcile before asking again.
REAPPLY_AFTER = dt.timedelta(seconds=20)


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

