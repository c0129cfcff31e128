"""Pre-upgrade VolumeSnapshots: deterministic names, labels, readiness and retention.

Pure functions used by the UpgradeRequest reconciler (create and wait) and by the
retention pass. Names are derived from the request and the PVC, so a reconcile that
runs again after a crash finds the snapshots it already created instead of making a
second set. Labels are FluxUp's own (never Flux's, or Flux would prune them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "APP_LABEL",
    "PREVIOUS_IDENTITY_ANNOTATION",
    "PVC_ANNOTATION",
    "REQUEST_LABEL",
    "VERSION_LABEL",
    "SnapshotState",
    "SnapshotStatus",
    "build_snapshot",
    "build_snapshot_name",
    "determine_snapshot_status",
    "label_safe",
    "select_expired",
]

REQUEST_LABEL = "fluxup.dev/upgrade-request"
VERSION_LABEL = "fluxup.dev/protects-version"
APP_LABEL = "fluxup.dev/managed-app"
PVC_ANNOTATION = "fluxup.dev/source-pvc"
#: JSON of the identity that ran when the snapshot was taken: what a rollback from this
#: snapshot returns to (see :mod:`fluxup.logic.rollback_plan`).
PREVIOUS_IDENTITY_ANNOTATION = "fluxup.dev/previous-identity"


def label_safe(value: str, limit: int = 63) -> str:
    """``value`` made valid as a label value (``+`` etc. replaced, length capped)."""
    text = re.sub(r"[^A-Za-z0-9._-]", "_", value)[:limit]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", text)


def build_snapshot_name(request: str, pvc: str) -> str:
    """``<request>-<pvc>``, shortened with a hash when it would exceed 63 characters."""
    name = f"{request}-{pvc}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-.')}-{digest}"


def build_snapshot(
    namespace: str,
    request: str,
    app: str,
    pvc: str,
    snapshot_class: str | None,
    version: str,
    previous_identity: str | None = None,
) -> dict[str, Any]:
    """The VolumeSnapshot object protecting ``pvc`` for ``request``; ``previous_identity``
    (JSON) records what ran before the upgrade, for a rollback from the snapshot alone."""
    annotations = {PVC_ANNOTATION: pvc}
    if previous_identity:
        annotations[PREVIOUS_IDENTITY_ANNOTATION] = previous_identity
    spec: dict[str, Any] = {"source": {"persistentVolumeClaimName": pvc}}
    if snapshot_class:
        spec["volumeSnapshotClassName"] = snapshot_class
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {
            "name": build_snapshot_name(request, pvc),
            "namespace": namespace,
            "labels": {
                APP_LABEL: label_safe(app),
                REQUEST_LABEL: label_safe(request),
                VERSION_LABEL: label_safe(version),
            },
            "annotations": annotations,
        },
        "spec": spec,
    }


class SnapshotState(StrEnum):
    PENDING = "Pending"
    READY = "Ready"
    FAILED = "Failed"


@dataclass(frozen=True)
class SnapshotStatus:
    name: str
    pvc: str
    state: SnapshotState
    message: str = ""
    restore_size: str = ""


def determine_snapshot_status(obj: Mapping[str, Any]) -> SnapshotStatus:
    """Read a VolumeSnapshot's readiness. ``status.error`` means Failed, even beside
    ``readyToUse`` (the snapshot controller reports a lost content that way) — failed *for
    now*: the CSI snapshotter keeps retrying and clears the error when an attempt works,
    so a caller that waits gives the snapshot its timeout before it gives up."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    pvc = (obj.get("spec") or {}).get("source", {}).get("persistentVolumeClaimName", "")
    name = str(meta.get("name", ""))
    error = status.get("error") or {}
    if error.get("message"):
        return SnapshotStatus(name, pvc, SnapshotState.FAILED, str(error["message"]))
    if status.get("readyToUse") is True:
        return SnapshotStatus(
            name, pvc, SnapshotState.READY, restore_size=str(status.get("restoreSize", ""))
        )
    return SnapshotStatus(name, pvc, SnapshotState.PENDING, "waiting for ReadyToUse")


def _created(obj: Mapping[str, Any]) -> dt.datetime:
    text = str((obj.get("metadata") or {}).get("creationTimestamp") or "1970-01-01T00:00:00Z")
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def select_expired(
    snapshots: Sequence[Mapping[str, Any]],
    keep_last: int,
    max_age: dt.timedelta | None,
    now: dt.datetime,
    protected_requests: Collection[str],
) -> list[str]:
    """Names of snapshots to delete under the retention policy.

    Snapshots are grouped into sets by upgrade request. The newest ``keep_last`` sets
    are kept; older sets are deleted, and so are sets older than ``max_age``, except
    the newest set (what a rollback restores) and sets of ``protected_requests``
    (in-flight upgrades and the newest successful one), which are never deleted.
    A set with a failed snapshot (``status.error``) can restore nothing: it is deleted
    unless protected, and never counts as the newest set or towards ``keep_last``.
    Snapshots without a request label are no set: never deleted, never counted.
    """
    protected = {label_safe(r) for r in protected_requests}
    sets: dict[str, list[Mapping[str, Any]]] = {}
    for snap in snapshots:
        request = str(((snap.get("metadata") or {}).get("labels") or {}).get(REQUEST_LABEL, ""))
        if request:
            sets.setdefault(request, []).append(snap)
    expired: list[str] = []
    for request, members in list(sets.items()):
        failed = any(determine_snapshot_status(s).state is SnapshotState.FAILED for s in members)
        if failed:
            del sets[request]
            if request not in protected:
                expired += sorted(str(s["metadata"]["name"]) for s in members)
    ordered = sorted(sets.items(), key=lambda kv: max(_created(s) for s in kv[1]), reverse=True)
    for index, (request, members) in enumerate(ordered):
        if index == 0 or request in protected:
            continue
        newest = max(_created(s) for s in members)
        too_many = index >= keep_last
        too_old = max_age is not None and now - newest > max_age
        if too_many or too_old:
            expired += sorted(str(s["metadata"]["name"]) for s in members)
    return expired
