"""ManagedApp (``fluxup.dev/v1alpha1``): an app whose upgrades FluxUp gates and reverts.

The spec names the app's HelmRelease and says how to protect it: which volumes to
snapshot and how long to keep the snapshots, which versions to offer or apply on their
own, how to check health afterwards, whether to roll back on failure, and how long each
phase may take. The status is what the operator discovered (release, chart source, Git
file, PVCs, workloads), what runs now, what Renovate offers, and what is in flight.

Parsed once at the boundary (``ManagedApp.from_dict(body)``); the schema is
``crds/fluxup.dev_managedapps.yaml`` and ``tests/api/test_models.py`` keeps both equal.
Defaults here equal the CRD's. Pure data; no I/O.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Final

from fluxup.api._codec import JSONModel, Resource
from fluxup.api.conditions import Condition
from fluxup.api.constants import API_VERSION, MANAGED_APP
from fluxup.api.duration import Duration
from fluxup.api.meta import (
    ImageTag,
    NamespacedObjectReference,
    ObjectMeta,
    WorkloadKind,
    WorkloadReference,
)
from fluxup.api.upgraderequest import UpgradePhase
from fluxup.errors import InvalidObjectError

__all__ = [
    "ActiveRequest",
    "AutoUpdate",
    "AvailableUpdate",
    "ChartPolicy",
    "ChartSource",
    "ChartSourceKind",
    "DiscoveredPVC",
    "DiscoveredWorkload",
    "GitSource",
    "HTTPCheck",
    "HealthCheck",
    "HelmReleaseInfo",
    "ImagePolicy",
    "LastUpgrade",
    "MaintenanceWindow",
    "ManagedApp",
    "ManagedAppSpec",
    "ManagedAppStatus",
    "Notifications",
    "Quiesce",
    "RequestKind",
    "RetentionPolicy",
    "Timeouts",
    "UpdateCandidate",
    "UpdateSource",
    "UpdateType",
    "VersionPolicy",
    "VolumeSnapshots",
    "Weekday",
]


class AutoUpdate(enum.StrEnum):
    """The largest kind of update FluxUp starts on its own (``none``: only on request)."""

    NONE = "none"
    PATCH = "patch"
    MINOR = "minor"
    MAJOR = "major"


class UpdateType(enum.StrEnum):
    """How far an available version is from the current one (semver)."""

    PATCH = "patch"
    MINOR = "minor"
    MAJOR = "major"


class UpdateSource(enum.StrEnum):
    """What an available update changes: the chart version or an image tag."""

    CHART = "chart"
    IMAGE = "image"


class ChartSourceKind(enum.StrEnum):
    """Flux source kinds a HelmRelease gets its chart from."""

    HELM_REPOSITORY = "HelmRepository"
    GIT_REPOSITORY = "GitRepository"
    BUCKET = "Bucket"
    OCI_REPOSITORY = "OCIRepository"
    HELM_CHART = "HelmChart"


class RequestKind(enum.StrEnum):
    """Kinds of operations that can be in flight for an app."""

    UPGRADE_REQUEST = "UpgradeRequest"
    ROLLBACK_REQUEST = "RollbackRequest"


# --- spec ---------------------------------------------------------------------------

# Default durations (frozen values; named so the dataclass defaults stay plain names).
_5M: Final = Duration("5m")
_10M: Final = Duration("10m")
_15M: Final = Duration("15m")
_30M: Final = Duration("30m")


@dataclass(frozen=True)
class RetentionPolicy:
    """Which pre-upgrade snapshot sets to keep: the newest ``keep_last``, none older
    than ``max_age`` (when set). The newest set is always kept."""

    keep_last: int = 3
    max_age: Duration | None = None


@dataclass(frozen=True)
class VolumeSnapshots:
    """Pre-upgrade snapshots. Empty ``pvcs``: the PVCs mounted by the app's workloads.

    A PVC reference without namespace means the namespace of the HelmRelease's workloads
    (its ``spec.targetNamespace``, else its own). Without a class name FluxUp uses the
    default VolumeSnapshotClass of the PVCs' CSI driver.
    """

    enabled: bool = True
    volume_snapshot_class_name: str | None = None
    pvcs: tuple[NamespacedObjectReference, ...] = ()
    retention_policy: RetentionPolicy = field(default_factory=RetentionPolicy)


@dataclass(frozen=True)
class ChartPolicy:
    """Versions of the chart FluxUp offers (``constraint``) and applies alone (``auto_update``)."""

    auto_update: AutoUpdate = AutoUpdate.NONE
    constraint: str | None = None


@dataclass(frozen=True)
class ImagePolicy:
    """An image whose tag at ``values_path`` (in the HelmRelease's ``spec.values``) is part
    of the gated identity, with its version policy. ``name`` is the image repository."""

    name: str
    values_path: str
    auto_update: AutoUpdate = AutoUpdate.NONE
    constraint: str | None = None


class Weekday(enum.StrEnum):
    """A day of a maintenance window (Monday first, as ``datetime.weekday()``)."""

    MON = "Mon"
    TUE = "Tue"
    WED = "Wed"
    THU = "Thu"
    FRI = "Fri"
    SAT = "Sat"
    SUN = "Sun"


_TIME_OF_DAY: Final = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


@dataclass(frozen=True)
class MaintenanceWindow:
    """When ``autoUpdate`` may start an upgrade: from ``start`` to ``end`` (``HH:MM``,
    wall-clock time in the IANA ``time_zone``) on ``days`` (every day when empty). An
    ``end`` before the ``start`` crosses midnight; the window belongs to the day it starts
    on. :mod:`fluxup.logic.maintenance_window` decides whether it is open."""

    start: str
    end: str
    days: tuple[Weekday, ...] = ()
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not _TIME_OF_DAY.match(value):
                raise InvalidObjectError(name, f"{value!r} is not a time of day; write HH:MM "
                                         "(00:00 to 23:59)")
        if self.start == self.end:
            raise InvalidObjectError("end", "equals start: the window would be empty")
        if len(set(self.days)) != len(self.days):
            raise InvalidObjectError("days", "lists a day twice")


@dataclass(frozen=True)
class VersionPolicy:
    """Version policy for the chart and for the images at value paths, and when
    automatic upgrades may start (``maintenance_window``; any time when unset)."""

    chart: ChartPolicy = field(default_factory=ChartPolicy)
    images: tuple[ImagePolicy, ...] = ()
    maintenance_window: MaintenanceWindow | None = None


@dataclass(frozen=True)
class HTTPCheck:
    """An HTTP GET that must answer ``expected_status`` after an upgrade or rollback."""

    url: str
    expected_status: int = 200


@dataclass(frozen=True)
class HealthCheck:
    """After the release: workloads ready (and the HTTP check passes) within ``timeout``."""

    timeout: Duration = _5M
    http: HTTPCheck | None = None


@dataclass(frozen=True)
class Quiesce:
    """Scale writers to zero while snapshotting, for application-consistent snapshots.
    Empty ``workloads``: every workload of the app (``status.workloads``)."""

    enabled: bool = False
    workloads: tuple[WorkloadReference, ...] = ()


@dataclass(frozen=True)
class Notifications:
    """Which of the app's events are announced (update available; upgrade started and
    succeeded, rollbacks; failures). Gate holds and bypasses are always announced."""

    on_available: bool = True
    on_upgrade: bool = True
    on_failure: bool = True


@dataclass(frozen=True)
class Timeouts:
    """Deadlines of the long phases. ``apply``: AwaitingApply (Flux applies the commit);
    ``quiesce``: Quiescing and StoppingApp (pods gone); ``snapshot``: Snapshotting
    (ReadyToUse); ``upgrade``: Upgrading (helm-controller Ready); ``restore``:
    RestoringVolumes. HealthChecking uses ``healthCheck.timeout``."""

    apply: Duration = _10M
    quiesce: Duration = _5M
    snapshot: Duration = _10M
    upgrade: Duration = _15M
    restore: Duration = _30M


@dataclass(frozen=True)
class ManagedAppSpec(JSONModel):
    """What FluxUp manages and how (``spec``).

    ``helm_release_ref.namespace`` defaults to the ManagedApp's namespace. Without
    ``kustomization_ref`` FluxUp follows the Kustomization that applied the HelmRelease
    (its ``kustomize.toolkit.fluxcd.io/*`` labels); without ``git_path`` it searches that
    Kustomization's path for the file defining the HelmRelease. ``suspend`` pauses
    detection and new operations; the gate keeps holding changes.
    """

    _path: ClassVar[str] = "spec"

    helm_release_ref: NamespacedObjectReference
    kustomization_ref: NamespacedObjectReference | None = None
    git_path: str | None = None
    suspend: bool = False
    volume_snapshots: VolumeSnapshots = field(default_factory=VolumeSnapshots)
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)
    health_check: HealthCheck = field(default_factory=HealthCheck)
    auto_rollback: bool = False
    quiesce: Quiesce = field(default_factory=Quiesce)
    timeouts: Timeouts = field(default_factory=Timeouts)
    notifications: Notifications = field(default_factory=Notifications)


# --- status -------------------------------------------------------------------------


@dataclass(frozen=True)
class AvailableUpdate:
    """The update the versionPolicy picks from the candidates: what an upgrade without
    explicit target applies."""

    version: str | None = None
    images: tuple[ImageTag, ...] = ()
    type: UpdateType | None = None
    detected_at: datetime | None = None


@dataclass(frozen=True)
class UpdateCandidate:
    """One newer version Renovate found, allowed by the policy or not.

    ``name`` is the chart name or the image repository; ``values_path`` is set for images.
    """

    source: UpdateSource
    name: str
    version: str
    type: UpdateType
    values_path: str | None = None
    current_version: str | None = None
    detected_at: datetime | None = None


@dataclass(frozen=True)
class HelmReleaseInfo:
    """The HelmRelease as discovered: served API version, chart, app version, and where
    its workloads run (``target_namespace``)."""

    api_version: str
    name: str
    namespace: str
    chart_name: str | None = None
    app_version: str | None = None
    target_namespace: str | None = None


@dataclass(frozen=True)
class ChartSource:
    """The Flux source of the chart (``spec.chart.spec.sourceRef`` or ``spec.chartRef``)."""

    kind: ChartSourceKind
    name: str
    namespace: str
    url: str | None = None


@dataclass(frozen=True)
class GitSource:
    """Where the HelmRelease lives in Git: repository, branch, Kustomization path, file.

    ``git_repository_ref`` is the Flux GitRepository the app's Kustomization uses; FluxUp
    takes Git credentials from its ``secretRef`` only (never from another GitRepository
    that happens to share the URL)."""

    repository_url: str
    branch: str | None = None
    path: str | None = None
    file: str | None = None
    git_repository_ref: NamespacedObjectReference | None = None


@dataclass(frozen=True)
class DiscoveredPVC:
    """A PVC FluxUp snapshots before upgrades."""

    name: str
    namespace: str
    storage_class_name: str | None = None
    capacity: str | None = None


@dataclass(frozen=True)
class DiscoveredWorkload:
    """A workload of the app, scaled and health-checked by FluxUp."""

    kind: WorkloadKind
    name: str
    namespace: str
    replicas: int | None = None


@dataclass(frozen=True)
class LastUpgrade:
    """The most recent finished UpgradeRequest of the app."""

    upgrade_request: str
    phase: UpgradePhase
    from_version: str | None = None
    to_version: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True)
class ActiveRequest:
    """The one operation in flight for the app; others wait in phase Queued."""

    kind: RequestKind
    name: str


@dataclass(frozen=True)
class ManagedAppStatus(JSONModel):
    """What the operator observed and decided (``status``), written once per pass."""

    _path: ClassVar[str] = "status"

    observed_generation: int | None = None
    conditions: tuple[Condition, ...] = ()
    current_version: str | None = None
    current_images: tuple[ImageTag, ...] = ()
    available_update: AvailableUpdate | None = None
    available_updates: tuple[UpdateCandidate, ...] = ()
    helm_release: HelmReleaseInfo | None = None
    chart_source: ChartSource | None = None
    git: GitSource | None = None
    pvcs: tuple[DiscoveredPVC, ...] = ()
    workloads: tuple[DiscoveredWorkload, ...] = ()
    volume_snapshot_class_name: str | None = None
    last_upgrade: LastUpgrade | None = None
    active_request: ActiveRequest | None = None


@dataclass(frozen=True, kw_only=True)
class ManagedApp(Resource):
    """A whole ManagedApp object."""

    KIND: ClassVar[str] = MANAGED_APP.kind

    api_version: str = API_VERSION
    kind: str = MANAGED_APP.kind
    metadata: ObjectMeta
    spec: ManagedAppSpec
    status: ManagedAppStatus = field(default_factory=ManagedAppStatus)

    def __post_init__(self) -> None:
        self._check_type_meta()
