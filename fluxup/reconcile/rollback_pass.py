"""What one RollbackRequest pass knows, and the small readers its actions share.

:class:`RollbackPass` bundles the request, its status as built so far, the ManagedApp
and the UpgradeRequest it undoes (either may be missing before Validating). The
actions in :mod:`fluxup.reconcile.rollback_steps` and
:mod:`fluxup.reconcile.rollback_resume` answer with the same
:class:`~fluxup.reconcile.upgrade_pass.Outcome` the upgrade actions use. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass

from fluxup.adapters.kube import Obj, R
from fluxup.api.constants import ROLLBACK_REQUEST
from fluxup.api.managedapp import ManagedApp
from fluxup.api.meta import Identity
from fluxup.api.rollbackrequest import RollbackRequest, RollbackRequestStatus
from fluxup.api.upgraderequest import UpgradeRequest
from fluxup.logic.snapshots import APP_LABEL, REQUEST_LABEL
from fluxup.reconcile.context import Context

__all__ = ["RollbackPass", "resolve_names"]


@dataclass(frozen=True)
class RollbackPass:
    """Everything one pass knows about the rollback it drives."""

    ctx: Context
    obj: Obj
    rr: RollbackRequest
    status: RollbackRequestStatus
    app: ManagedApp | None
    ur: UpgradeRequest | None

    @property
    def namespace(self) -> str:
        return self.rr.metadata.namespace or ""

    @property
    def name(self) -> str:
        return self.rr.metadata.name

    @property
    def request_id(self) -> str:
        """``<namespace>/<name>``: the Git trailer and the restored claims' marker."""
        return f"{self.namespace}/{self.name}"

    @property
    def request_ref(self) -> str:
        """``RollbackRequest/<namespace>/<name>``: whom line 2's approval is for."""
        return f"{ROLLBACK_REQUEST.kind}/{self.request_id}"

    def need_app(self) -> ManagedApp:
        if self.app is None:
            raise AssertionError("the ManagedApp is resolved before this phase")
        return self.app

    @property
    def hr_ref(self) -> tuple[str, str]:
        app = self.need_app()
        ref = app.spec.helm_release_ref
        return ref.namespace_or(app.metadata.namespace or ""), ref.name

    @property
    def via_chart_ref(self) -> bool:
        source = self.need_app().status.chart_source
        return source is not None and source.kind == "OCIRepository"

    def target(self) -> Identity:
        return self.status.target_identity or Identity()


async def resolve_names(ctx: Context, rr: RollbackRequest) -> tuple[str | None, str | None, str]:
    """(ManagedApp name, UpgradeRequest name, problem) named by the request's spec.

    From ``upgradeRequestRef``: that request and its app. From ``snapshotRef``: the
    snapshot's FluxUp labels. ``problem`` says why a name could not be resolved.
    """
    namespace = rr.metadata.namespace
    if rr.spec.upgrade_request_ref is not None:
        name = rr.spec.upgrade_request_ref.name
        found = await ctx.kube.find(R.UPGRADEREQUEST, namespace, name)
        if found is None:
            return None, name, f"UpgradeRequest {namespace}/{name} does not exist"
        ur = UpgradeRequest.from_dict(found)
        return ur.spec.managed_app_ref.name, name, ""
    if rr.spec.snapshot_ref is None:
        return None, None, "set spec.upgradeRequestRef or spec.snapshotRef"
    snap_name = rr.spec.snapshot_ref.name
    snap = await ctx.kube.find(R.SNAPSHOT, namespace, snap_name)
    if snap is None:
        return None, None, f"VolumeSnapshot {namespace}/{snap_name} does not exist"
    labels = (snap.get("metadata") or {}).get("labels") or {}
    app, request = labels.get(APP_LABEL), labels.get(REQUEST_LABEL)
    if not app or not request:
        return None, None, (
            f"VolumeSnapshot {namespace}/{snap_name} was not taken by FluxUp before an "
            f"upgrade (it lacks the {APP_LABEL} and {REQUEST_LABEL} labels)"
        )
    return str(app), str(request), ""
