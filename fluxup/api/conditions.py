"""Status conditions: the ``metav1.Condition`` shape, and FluxUp's condition types and reasons.

Every FluxUp kind reports the kstatus conditions ``Ready``, ``Reconciling`` and
``Stalled`` plus a few specific ones listed in :class:`ConditionType`. ``Ready`` is only
ever computed by a summary (``fluxup.logic``); reconcilers record the specific conditions
with :func:`set_condition`, which keeps ``lastTransitionTime`` unless status, reason or
message change. Reasons are CamelCase constants in :class:`Reason`, shared by all kinds.
Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "Condition",
    "ConditionStatus",
    "ConditionType",
    "Reason",
    "find_condition",
    "is_true",
    "set_condition",
]


class ConditionStatus(enum.StrEnum):
    """``status`` of a condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(enum.StrEnum):
    """Condition types FluxUp writes. Positive polarity except the kstatus abnormal ones."""

    #: The object reached what its spec asks for (kstatus); written only by the summary.
    READY = "Ready"
    #: FluxUp is working towards the spec (kstatus, abnormal-true).
    RECONCILING = "Reconciling"
    #: FluxUp cannot make progress without a change by someone (kstatus, abnormal-true).
    STALLED = "Stalled"

    # ManagedApp
    #: The HelmRelease, its Git file, PVCs and workloads were found (status shows them).
    DISCOVERED = "Discovered"
    #: Every identity change of the release is held until snapshots are ready: at apply
    #: time (line 1) for pinned versions, at Helm's release record (line 2) for versions a
    #: range or floating tag resolves to (reason ``VersionRange``); False while line 2
    #: does not cover the app yet (reason ``ReleaseNotRecorded``).
    GATED = "Gated"
    #: The versionPolicy allows an update Renovate found (``status.availableUpdate``).
    UPDATE_AVAILABLE = "UpdateAvailable"
    #: The last Renovate lookup for this app succeeded and was mapped onto it.
    UPDATES_CHECKED = "UpdatesChecked"
    #: The gate holds a version of the release that FluxUp has not released yet.
    HELD = "Held"
    #: The app's PVCs were found and a VolumeSnapshotClass fits their CSI driver.
    SNAPSHOT_CAPABLE = "SnapshotCapable"

    # UpgradeRequest
    #: Every preflight check passed (``status.preflight``).
    PREFLIGHT_PASSED = "PreflightPassed"
    #: Every pre-upgrade VolumeSnapshot is ReadyToUse.
    SNAPSHOTS_READY = "SnapshotsReady"

    # UpgradeRequest and RollbackRequest
    #: The workloads are ready (and the optional HTTP check answered as expected).
    HEALTHY = "Healthy"

    # RollbackRequest
    #: Every PVC was recreated from its snapshot.
    VOLUMES_RESTORED = "VolumesRestored"
    #: The upgrade commit was reverted in Git (or the previous version committed).
    GIT_REVERTED = "GitReverted"


class Reason(enum.StrEnum):
    """Condition reasons (CamelCase, as the Condition schema requires)."""

    # General
    #: Work is in progress; see the message for the step.
    PROGRESSING = "Progressing"
    #: The operation finished as asked.
    SUCCEEDED = "Succeeded"
    #: The operation failed; the message says why and what to do.
    FAILED = "Failed"
    #: A phase did not finish before its deadline (``spec.timeouts``).
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    #: Another operation on the same app is in flight; this one waits.
    QUEUED = "Queued"
    #: ``spec.suspend`` is true; FluxUp leaves the app alone (the gate still holds).
    SUSPENDED = "Suspended"
    #: ``spec.dryRun`` is true: checks and a Git diff, no change.
    DRY_RUN = "DryRun"

    # ManagedApp
    #: Running the deployed identity with nothing to do.
    UP_TO_DATE = "UpToDate"
    #: Renovate found a version the versionPolicy allows.
    NEW_VERSION_DETECTED = "NewVersionDetected"
    #: The chart version (or OCIRepository tag) is exact, so the gate can hold changes.
    EXACT_VERSION = "ExactVersion"
    #: The chart version is a range or ``ref.semver``: the source resolves new versions
    #: without an object change, so line 1 cannot hold them; line 2 (Helm's release
    #: record) holds each resolved version instead.
    VERSION_RANGE = "VersionRange"
    #: The operator has not yet recorded the app's Helm release for line 2 of the gate.
    RELEASE_NOT_RECORDED = "ReleaseNotRecorded"
    #: ``spec.helmReleaseRef`` names no HelmRelease.
    HELM_RELEASE_NOT_FOUND = "HelmReleaseNotFound"
    #: The Flux Kustomization that applies the HelmRelease was not found.
    KUSTOMIZATION_NOT_FOUND = "KustomizationNotFound"
    #: No file in the Git repository defines the HelmRelease (set ``spec.gitPath``).
    GIT_FILE_NOT_FOUND = "GitFileNotFound"
    #: A PVC from ``spec.volumeSnapshots.pvcs`` does not exist.
    PVC_NOT_FOUND = "PVCNotFound"
    #: No VolumeSnapshotClass fits the PVCs' CSI driver.
    SNAPSHOT_CLASS_NOT_FOUND = "SnapshotClassNotFound"
    #: Renovate did not run or exited with an error.
    RENOVATE_FAILED = "RenovateFailed"
    #: A Renovate report could not be read.
    REPORT_INVALID = "ReportInvalid"

    # UpgradeRequest
    #: A preflight check failed (``status.preflight`` says which).
    PREFLIGHT_FAILED = "PreflightFailed"
    #: the request's ManagedApp is being deleted: FluxUp lets go of the app
    MANAGED_APP_DELETED = "ManagedAppDeleted"
    #: A VolumeSnapshot reported an error or never became ReadyToUse.
    SNAPSHOT_FAILED = "SnapshotFailed"
    #: ``spec.skipSnapshot`` is true (or the ManagedApp disables snapshots).
    SNAPSHOTS_SKIPPED = "SnapshotsSkipped"
    #: helm-controller reported the release failed.
    UPGRADE_FAILED = "UpgradeFailed"
    #: Workloads did not become ready, or the HTTP check failed.
    HEALTH_CHECK_FAILED = "HealthCheckFailed"
    #: The change could not be committed to Git.
    COMMIT_FAILED = "CommitFailed"

    # RollbackRequest
    #: The snapshots to restore do not exist or are not ReadyToUse.
    SNAPSHOT_NOT_FOUND = "SnapshotNotFound"
    #: A PVC could not be recreated from its snapshot.
    RESTORE_FAILED = "RestoreFailed"
    #: The upgrade commit was reverted (GitReverted), or found reverted after a restart.
    REVERTED = "Reverted"
    #: ``git revert`` conflicted (or the upgrade commit left the branch); FluxUp committed
    #: the previous version forward instead (GitReverted).
    REVERT_CONFLICT = "RevertConflict"
    #: The upgrade had no FluxUp commit (a plain ``git push``); FluxUp committed the
    #: previous version forward (GitReverted).
    COMMITTED_FORWARD = "CommittedForward"
    #: Git already had the previous version; nothing was committed (GitReverted).
    GIT_UNCHANGED = "GitUnchanged"
    #: The request cannot be carried out as written (the message says why); nothing changed.
    INVALID_REQUEST = "InvalidRequest"
    #: Another operation on the app is in flight; this request was refused, nothing changed.
    APP_BUSY = "AppBusy"
    #: The rolled-back release did not become healthy.
    ROLLBACK_FAILED = "RollbackFailed"


@dataclass(frozen=True)
class Condition:
    """One entry of ``status.conditions`` (the ``metav1.Condition`` shape)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: datetime
    observed_generation: int | None = None


def find_condition(conditions: Iterable[Condition], type_: str) -> Condition | None:
    """The condition of type ``type_``, or ``None``."""
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Iterable[Condition], type_: str) -> bool:
    """Whether the condition ``type_`` is present with status ``True``."""
    found = find_condition(conditions, type_)
    return found is not None and found.status is ConditionStatus.TRUE


def set_condition(conditions: Iterable[Condition], new: Condition) -> tuple[Condition, ...]:
    """``conditions`` with ``new`` in place of the condition of the same type.

    ``new.last_transition_time`` is used only if the condition is new or its status,
    reason or message changed; otherwise the old transition time is kept. Order is kept;
    a new type is appended.
    """
    result: list[Condition] = []
    replaced = False
    for old in conditions:
        if old.type != new.type:
            result.append(old)
            continue
        replaced = True
        unchanged = (old.status, old.reason, old.message) == (new.status, new.reason, new.message)
        if unchanged:
            result.append(dataclasses.replace(new, last_transition_time=old.last_transition_time))
        else:
            result.append(new)
    if not replaced:
        result.append(new)
    return tuple(result)
