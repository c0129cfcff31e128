"""What a rollback restores, decided from observed objects: the snapshot set, the identity
to return to, and each PVC's next restore step.

Called by the RollbackRequest actions (:mod:`fluxup.reconcile.rollback_steps`), which
read the objects and carry out the step this module names, one at a time, so every step
can be repeated after a crash. The data-safety rules live here, where they are tested
rule by rule: a PVC is deleted only when its snapshot is ReadyToUse, its volume's
reclaim policy is ``Retain`` and that volume is recorded in the request's status; a
restored PVC keeps the name, labels, annotations, StorageClass, access modes and volume
mode of the one it replaces, asks for at least the snapshot's ``restoreSize`` and names
the snapshot as ``dataSource``. Pure: no I/O.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fluxup.api._codec import decode, encode
from fluxup.api.meta import Identity
from fluxup.logic.identity import Identity as GateIdentity
from fluxup.logic.snapshots import (
    APP_LABEL,
    PREVIOUS_IDENTITY_ANNOTATION,
    PVC_ANNOTATION,
    REQUEST_LABEL,
    SnapshotState,
    determine_snapshot_status,
    label_safe,
)

__all__ = [
    "PREVIOUS_IDENTITY_ANNOTATION",
    "RESTORED_BY_ANNOTATION",
    "RESTORE_CLAIM_ANNOTATION",
    "RETAINED_BY_LABEL",
    "RETAINED_PVC_ANNOTATION",
    "RestoreStep",
    "SnapshotSet",
    "build_previous_identity_annotation",
    "build_restored_pvc",
    "build_retained_volume_patch",
    "build_rollback_approval",
    "determine_restore_step",
    "determine_snapshot_set",
    "parse_previous_identity",
    "parse_quantity",
    "parse_restore_claim",
]

#: Annotation on a PVC a rollback recreated: ``<namespace>/<RollbackRequest>``.
RESTORED_BY_ANNOTATION = "fluxup.dev/restored-by"
#: Label on a PersistentVolume a rollback retained: the RollbackRequest's name.
RETAINED_BY_LABEL = "fluxup.dev/retained-by-rollback"
#: Annotation on a retained PersistentVolume: ``<namespace>/<pvc>`` it belonged to.
RETAINED_PVC_ANNOTATION = "fluxup.dev/retained-from-pvc"

#: Annotation on a retained PersistentVolume: JSON of the claim that replaces its old
#: claim, written before the old claim is deleted, so the claim can be recreated after a
#: crash that came between the deletion and the creation.
RESTORE_CLAIM_ANNOTATION = "fluxup.dev/restore-claim"

#: Annotations Kubernetes controllers put on a bound PVC; a new claim must not carry them.
_CONTROLLER_ANNOTATIONS = frozenset(
    {
        "pv.kubernetes.io/bind-completed",
        "pv.kubernetes.io/bound-by-controller",
        "volume.beta.kubernetes.io/storage-provisioner",
        "volume.kubernetes.io/storage-provisioner",
        "volume.kubernetes.io/selected-node",
        "kubectl.kubernetes.io/last-applied-configuration",
    }
)

_SUFFIXES = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([+]?[0-9]*\.?[0-9]+)([eE][-+]?[0-9]+|[kMGTPE]i?|Ki|)$")


def parse_quantity(text: str | int) -> int:
    """Bytes in a Kubernetes quantity (``1Gi``, ``500M``, ``1.5Gi``, ``1e9``), rounded up.

    Raises ValueError for anything else.
    """
    raw = str(text).strip()
    match = _QUANTITY.match(raw)
    if not match:
        raise ValueError(f"{raw!r} is not a storage quantity (for example 1Gi or 500M)")
    number, suffix = match.groups()
    try:
        value = Decimal(number)
        scaled = value * Decimal(10) ** int(suffix[1:]) if suffix[:1] in ("e", "E") else (
            value * _SUFFIXES[suffix]
        )
    except (InvalidOperation, KeyError, ValueError):
        raise ValueError(f"{raw!r} is not a storage quantity") from None
    whole = int(scaled)
    return whole if whole == scaled else whole + 1


# --- the snapshot set ----------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotSet:
    """The snapshots of one upgrade: ``pvcs`` maps PVC name → snapshot name, all in
    ``namespace``; ``restore_sizes`` maps snapshot name → restoreSize (may be empty)."""

    request: str
    namespace: str
    pvcs: tuple[tuple[str, str], ...]
    restore_sizes: tuple[tuple[str, str], ...] = ()
    previous: Identity | None = None


def determine_snapshot_set(
    snapshots: Sequence[Mapping[str, Any]],
    app: str,
    request: str,
    app_pvcs: Collection[str],
) -> tuple[SnapshotSet | None, list[str]]:
    """The snapshot set of ``request`` among ``snapshots`` (one namespace), or the
    problems that forbid restoring it: none found, one not ReadyToUse or failed, one of
    another app, one of a PVC the app does not have, two for the same PVC."""
    members = [
        s for s in snapshots
        if ((s.get("metadata") or {}).get("labels") or {}).get(REQUEST_LABEL)
        == label_safe(request)
    ]
    if not members:
        return None, [f"no VolumeSnapshots of upgrade {request} exist"]
    problems: list[str] = []
    pvcs: dict[str, str] = {}
    sizes: dict[str, str] = {}
    previous: Identity | None = None
    namespace = str((members[0].get("metadata") or {}).get("namespace") or "")
    for snap in sorted(members, key=lambda s: str(s["metadata"]["name"])):
        meta = snap.get("metadata") or {}
        name = str(meta.get("name"))
        owner = (meta.get("labels") or {}).get(APP_LABEL)
        if owner != label_safe(app):
            problems.append(f"VolumeSnapshot {name} belongs to app {owner or '<none>'}, not {app}")
            continue
        state = determine_snapshot_status(snap)
        if state.state is SnapshotState.FAILED:
            problems.append(f"VolumeSnapshot {name} failed: {state.message}")
        elif state.state is not SnapshotState.READY:
            problems.append(f"VolumeSnapshot {name} is not ReadyToUse")
        pvc = (meta.get("annotations") or {}).get(PVC_ANNOTATION) or state.pvc
        if not pvc:
            problems.append(f"VolumeSnapshot {name} does not name its PVC")
            continue
        if app_pvcs and pvc not in app_pvcs:
            problems.append(f"VolumeSnapshot {name} is of PVC {pvc}, which {app} does not use")
        if pvc in pvcs:
            problems.append(f"VolumeSnapshots {pvcs[pvc]} and {name} both restore PVC {pvc}")
        pvcs[pvc] = name
        if state.restore_size:
            sizes[name] = state.restore_size
        previous = previous or parse_previous_identity(meta.get("annotations") or {})
    if problems:
        return None, problems
    return SnapshotSet(
        request, namespace, tuple(sorted(pvcs.items())), tuple(sorted(sizes.items())), previous
    ), []


def build_previous_identity_annotation(identity: Identity) -> str:
    """The :data:`PREVIOUS_IDENTITY_ANNOTATION` value for ``identity`` (compact JSON)."""
    return json.dumps(encode(identity), sort_keys=True, separators=(",", ":"))


def parse_previous_identity(annotations: Mapping[str, str]) -> Identity | None:
    """The identity a snapshot records as running before its upgrade (None: unknown)."""
    text = annotations.get(PREVIOUS_IDENTITY_ANNOTATION)
    if not text:
        return None
    try:
        identity = decode(Identity, json.loads(text))
    except (ValueError, TypeError):
        return None
    return identity if identity.version or identity.images else None


# --- one PVC ------------------------------------------------------------------------


class RestoreStep(enum.StrEnum):
    """The next step restoring one PVC; each is safe to repeat."""

    #: The snapshot is not ReadyToUse: touch nothing.
    WAIT_SNAPSHOT = "WaitSnapshot"
    #: Set the bound volume's reclaim policy to Retain (and label it).
    RETAIN_VOLUME = "RetainVolume"
    #: Write the retained volume's name into the request's status before deleting.
    RECORD_VOLUME = "RecordVolume"
    #: Delete the old PVC (its volume is retained and recorded).
    DELETE_CLAIM = "DeleteClaim"
    #: The old PVC is terminating: wait until it is gone.
    WAIT_DELETED = "WaitDeleted"
    #: Create the PVC from the snapshot.
    CREATE_CLAIM = "CreateClaim"
    #: The PVC holds the snapshot's data (bound, or waiting for its first consumer).
    DONE = "Done"
    #: The PVC is not bound to a volume FluxUp can retain: stop, change nothing.
    BLOCKED = "Blocked"


def _is_restored(pvc: Mapping[str, Any], snapshot: str, request_id: str) -> bool:
    meta = pvc.get("metadata") or {}
    source = (pvc.get("spec") or {}).get("dataSource") or {}
    return (
        (meta.get("annotations") or {}).get(RESTORED_BY_ANNOTATION) == request_id
        and source.get("kind") == "VolumeSnapshot"
        and source.get("name") == snapshot
    )


def determine_restore_step(
    pvc: Mapping[str, Any] | None,
    pv: Mapping[str, Any] | None,
    snapshot: Mapping[str, Any] | None,
    request_id: str,
    recorded_volume: str | None,
) -> tuple[RestoreStep, str]:
    """The next step for one PVC, and why.

    ``pvc`` is the claim as it is now (None: absent); ``pv`` the volume it is bound to,
    or, when the claim is gone, the volume the request recorded as retained for it;
    ``snapshot`` the VolumeSnapshot to restore; ``request_id`` ``<ns>/<rollback>``;
    ``recorded_volume`` the volume the request's status records as retained.
    """
    name = str(((snapshot or {}).get("metadata") or {}).get("name") or "")
    if pvc is not None and _is_restored(pvc, name, request_id):
        return RestoreStep.DONE, "restored from the snapshot"
    ready = snapshot is not None and (
        determine_snapshot_status(snapshot).state is SnapshotState.READY
    )
    if not ready:
        return RestoreStep.WAIT_SNAPSHOT, f"VolumeSnapshot {name or '<missing>'} is not ReadyToUse"
    if pvc is None:
        if pv is not None and parse_restore_claim(pv) is not None:
            return RestoreStep.CREATE_CLAIM, "the old claim is gone"
        return RestoreStep.BLOCKED, (
            "the claim does not exist and no retained volume records how to recreate it"
        )
    if (pvc.get("metadata") or {}).get("deletionTimestamp"):
        return RestoreStep.WAIT_DELETED, "the old claim is being deleted"
    volume = str((pvc.get("spec") or {}).get("volumeName") or "")
    if not volume or pv is None or (pv.get("metadata") or {}).get("name") != volume:
        return RestoreStep.BLOCKED, (
            "the claim is not bound to a PersistentVolume, so its data cannot be retained"
        )
    if (
        (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") != "Retain"
        or ((pv.get("metadata") or {}).get("labels") or {}).get(RETAINED_BY_LABEL) is None
        or parse_restore_claim(pv) is None
    ):
        return RestoreStep.RETAIN_VOLUME, f"retain volume {volume}"
    if recorded_volume != volume:
        return RestoreStep.RECORD_VOLUME, f"record retained volume {volume}"
    return RestoreStep.DELETE_CLAIM, f"volume {volume} is retained; delete the claim"


def parse_restore_claim(pv: Mapping[str, Any]) -> dict[str, Any] | None:
    """The claim a retained volume records as its replacement (None: none recorded)."""
    text = ((pv.get("metadata") or {}).get("annotations") or {}).get(RESTORE_CLAIM_ANNOTATION)
    if not text:
        return None
    try:
        claim = json.loads(text)
    except ValueError:
        return None
    if not isinstance(claim, dict) or not isinstance(claim.get("metadata"), dict):
        return None
    return claim


def build_retained_volume_patch(rollback: str, claim: Mapping[str, Any]) -> dict[str, Any]:
    """Merge patch keeping a PersistentVolume (reclaim policy Retain), marking whose data
    it holds (so it can be found and reclaimed or re-attached later) and recording
    ``claim``, the PVC that replaces its old claim (:func:`build_restored_pvc`)."""
    meta = claim["metadata"]
    return {
        "metadata": {
            "labels": {RETAINED_BY_LABEL: label_safe(rollback)},
            "annotations": {
                RETAINED_PVC_ANNOTATION: f"{meta['namespace']}/{meta['name']}",
                RESTORE_CLAIM_ANNOTATION: json.dumps(claim, sort_keys=True, separators=(",", ":")),
            },
        },
        "spec": {"persistentVolumeReclaimPolicy": "Retain"},
    }


def build_restored_pvc(
    old: Mapping[str, Any], snapshot: str, restore_size: str | None, request_id: str
) -> dict[str, Any]:
    """The PVC that replaces ``old``, filled from ``snapshot``.

    Same name, namespace, labels, annotations (minus those controllers set on a bound
    claim), StorageClass, access modes, volume mode and selector; the storage request
    is the larger of the old request and the snapshot's ``restoreSize``.
    """
    meta = old.get("metadata") or {}
    spec = old.get("spec") or {}
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items()
        if k not in _CONTROLLER_ANNOTATIONS
    }
    annotations[RESTORED_BY_ANNOTATION] = request_id
    requests = dict((spec.get("resources") or {}).get("requests") or {})
    size = requests.get("storage")
    if restore_size and (size is None or parse_quantity(restore_size) > parse_quantity(size)):
        size = restore_size
    new_spec: dict[str, Any] = {
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "resources": {"requests": {**requests, **({"storage": size} if size else {})}},
        "dataSource": {
            "apiGroup": "snapshot.storage.k8s.io",
            "kind": "VolumeSnapshot",
            "name": snapshot,
        },
    }
    for key in ("storageClassName", "volumeMode", "selector"):
        if spec.get(key) is not None:
            new_spec[key] = spec[key]
    limits = (spec.get("resources") or {}).get("limits")
    if limits:
        new_spec["resources"]["limits"] = dict(limits)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": dict(meta.get("labels") or {}),
            "annotations": annotations,
        },
        "spec": new_spec,
    }


def build_rollback_approval(desired: GateIdentity, part: GateIdentity) -> GateIdentity:
    """The identity a Flux object will ask for once Git returns it to ``part`` (the
    chart version and image tags of the rollback target): what it asks for now
    (``desired``, chart source and other values included) with ``part`` applied."""
    images = dict(desired.images)
    images.update(part.images)
    return GateIdentity(
        chart=part.chart if part.chart is not None else desired.chart,
        images=tuple(images.items()),
        source=desired.source,
        extras=desired.extras,
    )
