"""What one UpgradeRequest pass knows, and what each phase action answers.

:class:`Pass` bundles the request, its ManagedApp and the context; :class:`Outcome` is an
action's decision (finished, jump, wait, fail, status updates). The small readers here
(the HelmRelease, its OCIRepository, FluxUp's annotations on them) are shared by the
phase actions: :mod:`fluxup.reconcile.upgrade_preflight` and the ``upgrade_lock``,
``upgrade_apply``, ``upgrade_protect``, ``upgrade_release`` and ``upgrade_end`` modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fluxup.adapters.kube import Obj, R
from fluxup.api import annotations as ann
from fluxup.api.managedapp import ManagedApp
from fluxup.api.meta import Identity
from fluxup.api.upgraderequest import (
    UpgradeRequest,
    UpgradeRequestStatus,
)
from fluxup.logic.identity import Identity as GateIdentity
from fluxup.logic.identity import parse_identity
from fluxup.logic.targets import to_gate
from fluxup.reconcile.context import Context

__all__ = [
    "Outcome",
    "Pass",
    "annotation",
    "has_change",
    "held_identity",
    "helm_release",
    "hr_part",
    "kustomization_ref",
    "load_app",
    "oci_repository",
]


@dataclass(frozen=True)
class Outcome:
    """What one action decided: finished, jump, wait, or fail; plus status updates."""

    done: bool = False
    goto: Any = None
    failure: tuple[str, str] | None = None
    message: str | None = None
    updates: dict[str, Any] = field(default_factory=dict)
    #: how a finished phase ended, for its condition (default: Succeeded)
    reason: str | None = None

    @classmethod
    def waiting(cls, message: str, **updates: Any) -> Outcome:
        return cls(message=message, updates=updates)

    @classmethod
    def finished(cls, message: str | None = None, reason: str | None = None,
                 **updates: Any) -> Outcome:
        return cls(done=True, message=message, updates=updates, reason=reason)

    @classmethod
    def failed(cls, reason: str, message: str, **updates: Any) -> Outcome:
        return cls(failure=(str(reason), message), updates=updates)


@dataclass(frozen=True)
class Pass:
    """Everything one pass knows about the request it drives."""

    ctx: Context
    obj: Obj
    ur: UpgradeRequest
    app: ManagedApp
    status: UpgradeRequestStatus

    @property
    def namespace(self) -> str:
        return self.ur.metadata.namespace or ""

    @property
    def request_id(self) -> str:
        return f"{self.namespace}/{self.ur.metadata.name}"

    @property
    def hr_ref(self) -> tuple[str, str]:
        ref = self.app.spec.helm_release_ref
        return ref.namespace_or(self.app.metadata.namespace or ""), ref.name

    @property
    def via_chart_ref(self) -> bool:
        source = self.app.status.chart_source
        return source is not None and source.kind == "OCIRepository"

    def target(self) -> Identity:
        return self.status.target_identity or Identity()


async def load_app(ctx: Context, ur: UpgradeRequest) -> ManagedApp | None:
    obj = await ctx.kube.find(R.MANAGEDAPP, ur.metadata.namespace, ur.spec.managed_app_ref.name)
    return ManagedApp.from_dict(obj) if obj else None


async def helm_release(p: Pass) -> Obj | None:
    namespace, name = p.hr_ref
    return await p.ctx.kube.find(R.HELMRELEASE, namespace, name)


async def oci_repository(p: Pass) -> Obj | None:
    source = p.app.status.chart_source
    if source is None or source.kind != "OCIRepository":
        return None
    return await p.ctx.kube.find(R.OCIREPOSITORY, source.namespace, source.name)


def kustomization_ref(p: Pass, hr: Obj | None) -> tuple[str, str] | None:
    """``(namespace, name)`` of the Kustomization that applies the app's HelmRelease: the
    ManagedApp's ``spec.kustomizationRef``, else the HelmRelease's kustomize-controller
    labels; None when neither names one."""
    ks_ref = p.app.spec.kustomization_ref
    labels = ((hr or {}).get("metadata") or {}).get("labels") or {}
    name = ks_ref.name if ks_ref else labels.get("kustomize.toolkit.fluxcd.io/name")
    if not name:
        return None
    namespace = (
        (ks_ref.namespace if ks_ref else None)
        or labels.get("kustomize.toolkit.fluxcd.io/namespace")
        or "flux-system"
    )
    return str(namespace), str(name)


def annotation(obj: Obj | None, name: str) -> str | None:
    if not obj:
        return None
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(name)
    return str(value) if value is not None else None


def held_identity(obj: Obj | None) -> GateIdentity | None:
    text = annotation(obj, ann.HELD)
    if not text:
        return None
    try:
        return parse_identity(text)
    except ValueError:
        return None


def hr_part(target: Identity, via_chart_ref: bool) -> GateIdentity:
    """The part of the target identity the HelmRelease itself carries."""
    gate = to_gate(target)
    return GateIdentity(chart=None if via_chart_ref else gate.chart, images=gate.images)


def has_change(part: GateIdentity) -> bool:
    return not part.is_empty
