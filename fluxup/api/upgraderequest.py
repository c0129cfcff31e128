"""UpgradeRequest (``fluxup.dev/v1alpha1``): one upgrade of one ManagedApp.

Created from the UI, with kubectl, by Renovate automation, or by the operator itself
when the admission gate holds a change that arrived from Git (``origin: git``). The
spec is immutable; the status records a resumable state machine (DESIGN.md §3): the
phase with its start time and deadline, the identities before and after, the Git commit
and diff, the snapshots taken, the replicas FluxUp scaled down, and preflight results.

Parsed once at the boundary (``UpgradeRequest.from_dict(body)``); the schema is
``crds/fluxup.dev_upgraderequests.yaml`` and ``tests/api/test_models.py`` keeps both
equal. The transition table lives in ``fluxup.logic``, not here. Pure data; no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Final

from fluxup.api._codec import JSONModel, Resource
from fluxup.api.conditions import Condition
from fluxup.api.constants import API_VERSION, UPGRADE_REQUEST
from fluxup.api.meta import Identity, ImageTag, LocalObjectReference, ObjectMeta, WorkloadReplicas

__all__ = [
    "TERMINAL_UPGRADE_PHASES",
    "Origin",
    "PreflightCheck",
    "PreflightResult",
    "SnapshotStatus",
    "UpgradePhase",
    "UpgradeRequest",
    "UpgradeRequestSpec",
    "UpgradeRequestStatus",
]


class UpgradePhase(enum.StrEnum):
    """Phases of an upgrade, in the order they normally run (``Queued`` waits its turn)."""

    PENDING = "Pending"
    QUEUED = "Queued"
    PREFLIGHT = "Preflight"
    #: UI/kubectl/renovate origins only: commit the bump to Git and ask Flux to reconcile.
    COMMITTING = "Committing"
    #: Waiting for Flux to apply the change and the gate to hold it.
    AWAITING_APPLY = "AwaitingApply"
    #: Optional: writers scaled to zero for application-consistent snapshots.
    QUIESCING = "Quiescing"
    SNAPSHOTTING = "Snapshotting"
    #: Approve the held identity, un-suspend, scale writers back.
    RELEASING = "Releasing"
    UPGRADING = "Upgrading"
    HEALTH_CHECKING = "HealthChecking"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


#: Phases after which nothing more happens to an UpgradeRequest.
TERMINAL_UPGRADE_PHASES: Final = frozenset({UpgradePhase.SUCCEEDED, UpgradePhase.FAILED})


class Origin(enum.StrEnum):
    """Where an upgrade came from. ``git``: the change was pushed to Git and held by the
    gate, so FluxUp commits nothing."""

    UI = "ui"
    KUBECTL = "kubectl"
    GIT = "git"
    RENOVATE = "renovate"


class PreflightResult(enum.StrEnum):
    """Outcome of one preflight check; any ``Failed`` stops the upgrade."""

    PASSED = "Passed"
    WARNING = "Warning"
    FAILED = "Failed"


@dataclass(frozen=True)
class UpgradeRequestSpec(JSONModel):
    """What to upgrade to (``spec``; immutable once created).

    Without ``target_version`` and ``target_images`` the ManagedApp's
    ``status.availableUpdate`` is used, resolved at Preflight into
    ``status.targetIdentity``. ``skip_snapshot`` upgrades without snapshots (no rollback
    of data possible); ``dry_run`` runs Preflight and records the exact Git diff only.
    """

    _path: ClassVar[str] = "spec"

    managed_app_ref: LocalObjectReference
    target_version: str | None = None
    target_images: tuple[ImageTag, ...] = ()
    skip_snapshot: bool = False
    dry_run: bool = False
    origin: Origin = Origin.KUBECTL


@dataclass(frozen=True)
class SnapshotStatus:
    """A VolumeSnapshot taken for this upgrade, as last observed."""

    name: str
    namespace: str
    pvc: str
    ready_to_use: bool
    restore_size: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class PreflightCheck:
    """One preflight check (HelmRelease found and Ready, PVCs bound, snapshot class
    present, Git file writable, no other operation in flight, ...)."""

    name: str
    result: PreflightResult
    message: str | None = None


@dataclass(frozen=True)
class UpgradeRequestStatus(JSONModel):
    """Progress of the upgrade (``status``). ``phase`` is ``None`` until first seen.

    ``previous_identity`` is what ran before (a rollback returns to it);
    ``target_identity`` the resolved identity being released. ``apply_requested_at`` is
    when FluxUp last asked Flux to reconcile (it asks again from that time, never from a
    clock modulo). ``rollback_request`` names
    the RollbackRequest started by ``autoRollback`` after a failure.
    """

    _path: ClassVar[str] = "status"

    phase: UpgradePhase | None = None
    observed_generation: int | None = None
    conditions: tuple[Condition, ...] = ()
    phase_started_at: datetime | None = None
    deadline: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    message: str | None = None
    previous_identity: Identity | None = None
    target_identity: Identity | None = None
    apply_requested_at: datetime | None = None
    git_commit: str | None = None
    git_diff: str | None = None
    snapshots: tuple[SnapshotStatus, ...] = ()
    quiesced_replicas: tuple[WorkloadReplicas, ...] = ()
    preflight: tuple[PreflightCheck, ...] = ()
    rollback_request: str | None = None


@dataclass(frozen=True, kw_only=True)
class UpgradeRequest(Resource):
    """A whole UpgradeRequest object."""

    KIND: ClassVar[str] = UPGRADE_REQUEST.kind

    api_version: str = API_VERSION
    kind: str = UPGRADE_REQUEST.kind
    metadata: ObjectMeta
    spec: UpgradeRequestSpec
    status: UpgradeRequestStatus = field(default_factory=UpgradeRequestStatus)

    def __post_init__(self) -> None:
        self._check_type_meta()
