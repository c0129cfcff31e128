"""RollbackRequest (``fluxup.dev/v1alpha1``): undo an upgrade from its snapshots.

Names either the UpgradeRequest to undo or one VolumeSnapshot FluxUp took before an
upgrade (every snapshot of that upgrade is restored with it). The spec is immutable;
the status records a resumable state machine (DESIGN.md §3): what FluxUp suspended and
scaled down (so it can put things back), which PVCs it recreated from which snapshot
and which old volume it retained, and the Git revert commit.

Parsed once at the boundary (``RollbackRequest.from_dict(body)``); the schema is
``crds/fluxup.dev_rollbackrequests.yaml`` and ``tests/api/test_models.py`` keeps both
equal. Pure data; no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Final

from fluxup.api._codec import JSON, JSONModel, Resource
from fluxup.api.conditions import Condition
from fluxup.api.constants import API_VERSION, ROLLBACK_REQUEST
from fluxup.api.meta import Identity, LocalObjectReference, ObjectMeta, WorkloadReplicas
from fluxup.errors import InvalidObjectError

__all__ = [
    "TERMINAL_ROLLBACK_PHASES",
    "RestoredPVC",
    "RollbackOrigin",
    "RollbackPhase",
    "RollbackRequest",
    "RollbackRequestSpec",
    "RollbackRequestStatus",
    "SuspendableKind",
    "SuspendedState",
]


class RollbackPhase(enum.StrEnum):
    """Phases of a rollback, in the order they normally run (``Queued`` waits its turn)."""

    PENDING = "Pending"
    QUEUED = "Queued"
    #: Snapshots exist and are ReadyToUse; the identity to return to is known.
    VALIDATING = "Validating"
    #: Suspend the Kustomization and HelmRelease, recording their prior states.
    SUSPENDING = "Suspending"
    #: Scale workloads to zero (replicas recorded) and wait for their pods to be gone.
    STOPPING_APP = "StoppingApp"
    #: Retain each PV, delete the PVC, recreate it from its snapshot.
    RESTORING_VOLUMES = "RestoringVolumes"
    #: Revert the upgrade commit (or commit the previous version forward).
    REVERTING_GIT = "RevertingGit"
    RESUMING = "Resuming"
    STARTING_APP = "StartingApp"
    HEALTH_CHECKING = "HealthChecking"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


#: Phases after which nothing more happens to a RollbackRequest.
TERMINAL_ROLLBACK_PHASES: Final = frozenset({RollbackPhase.SUCCEEDED, RollbackPhase.FAILED})


class RollbackOrigin(enum.StrEnum):
    """Who asked for the rollback; ``auto``: the operator, after a failed upgrade of a
    ManagedApp with ``autoRollback``."""

    UI = "ui"
    KUBECTL = "kubectl"
    AUTO = "auto"


class SuspendableKind(enum.StrEnum):
    """Flux kinds FluxUp suspends during a rollback."""

    KUSTOMIZATION = "Kustomization"
    HELM_RELEASE = "HelmRelease"
    OCI_REPOSITORY = "OCIRepository"


@dataclass(frozen=True)
class RollbackRequestSpec(JSONModel):
    """What to roll back (``spec``; immutable): exactly one of the two references.

    ``snapshot_ref`` names a VolumeSnapshot FluxUp took before an upgrade, in this
    namespace; the snapshots of the same upgrade are restored with it.
    """

    _path: ClassVar[str] = "spec"

    upgrade_request_ref: LocalObjectReference | None = None
    snapshot_ref: LocalObjectReference | None = None
    origin: RollbackOrigin = RollbackOrigin.KUBECTL

    def __post_init__(self) -> None:
        if (self.upgrade_request_ref is None) == (self.snapshot_ref is None):
            raise InvalidObjectError("", "set exactly one of upgradeRequestRef or snapshotRef")


@dataclass(frozen=True)
class SuspendedState:
    """A Flux object FluxUp suspended, and whether it was suspended before (then FluxUp
    leaves it suspended when resuming)."""

    kind: SuspendableKind
    name: str
    namespace: str
    was_suspended: bool


@dataclass(frozen=True)
class RestoredPVC:
    """A PVC recreated from a snapshot; ``retained_volume`` is the PV that held the data
    before the rollback, kept (reclaim policy Retain) until someone deletes it."""

    name: str
    namespace: str
    snapshot: str
    restored: bool
    retained_volume: str | None = None


@dataclass(frozen=True)
class RollbackRequestStatus(JSONModel):
    """Progress of the rollback (``status``). ``phase`` is ``None`` until first seen.

    ``managed_app`` and ``upgrade_request`` are resolved before Validating (also when
    the spec names a snapshot); ``target_identity`` is the identity returned to;
    ``from_version`` and ``to_version`` describe both for ``kubectl get``.
    """

    _path: ClassVar[str] = "status"

    phase: RollbackPhase | None = None
    observed_generation: int | None = None
    conditions: tuple[Condition, ...] = ()
    phase_started_at: datetime | None = None
    deadline: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    message: str | None = None
    managed_app: str | None = None
    upgrade_request: str | None = None
    target_identity: Identity | None = None
    from_version: str | None = None
    to_version: str | None = None
    suspended_states: tuple[SuspendedState, ...] = ()
    recorded_replicas: tuple[WorkloadReplicas, ...] = ()
    restored_pvcs: tuple[RestoredPVC, ...] = field(default=(), metadata={JSON: "restoredPVCs"})
    revert_commit: str | None = None


@dataclass(frozen=True, kw_only=True)
class RollbackRequest(Resource):
    """A whole RollbackRequest object."""

    KIND: ClassVar[str] = ROLLBACK_REQUEST.kind

    api_version: str = API_VERSION
    kind: str = ROLLBACK_REQUEST.kind
    metadata: ObjectMeta
    spec: RollbackRequestSpec
    status: RollbackRequestStatus = field(default_factory=RollbackRequestStatus)

    def __post_init__(self) -> None:
        self._check_type_meta()
