"""Locate the data files the sandbox needs inside the Go module cache.

CRDs, KWOK stages and example manifests ship inside the published module zips of the
exact versions :mod:`fluxup.sandbox.components` pins, so they always match the
binaries. Every function downloads the module if needed (through
:func:`fluxup.sandbox.gobuild.module_dir`) and returns paths inside the read-only
module cache; nothing here is hand-written or copied.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fluxup.errors import SandboxError
from fluxup.sandbox.components import (
    FLUX_VERSIONS,
    KUBERNETES_VERSION,
    KWOK_VERSION,
    SNAPSHOT_CLIENT_MODULE,
    SNAPSHOTTER_VERSION,
)

__all__ = [
    "FLUX_CONTROLLERS",
    "flux_crd_dir",
    "flux_crd_files",
    "group_snapshot_crd_files",
    "hostpath_csidriver_file",
    "hostpath_snapshotclass_file",
    "kwok_crd_files",
    "kwok_stage_files",
    "kwok_volume_stage_files",
    "kwok_volume_storage_class_file",
    "snapshot_crd_files",
]

#: Flux controllers in the order their CRDs must be applied (source kinds first: the
#: kustomize and helm controllers watch them).
FLUX_CONTROLLERS: tuple[str, ...] = (
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
)

KWOK_MODULE = "sigs.k8s.io/kwok"
KUBERNETES_MODULE = "k8s.io/kubernetes"


@cache
def _module(module: str, version: str) -> Path:
    from fluxup.sandbox.gobuild import module_dir

    return module_dir(module, version)


def _existing(paths: list[Path]) -> list[Path]:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SandboxError(f"expected data files missing from the module cache: {missing}")
    return paths


def _glob(directory: Path, pattern: str) -> list[Path]:
    found = sorted(directory.glob(pattern))
    if not found:
        raise SandboxError(f"no {pattern} in {directory}")
    return found


# --------------------------------------------------------------------------- Flux


def flux_crd_dir(controller: str) -> Path:
    """``config/crd/bases`` of ``github.com/fluxcd/<controller>`` at the pinned version."""
    version = FLUX_VERSIONS[controller]
    return _module(f"github.com/fluxcd/{controller}", version) / "config" / "crd" / "bases"


def flux_crd_files(controllers: tuple[str, ...] = FLUX_CONTROLLERS) -> list[Path]:
    """All Flux CRDs (source ones first). Served versions at the pinned train:
    source.toolkit v1, kustomize.toolkit v1, helm.toolkit v2,
    notification.toolkit alerts/providers v1beta3 and receivers v1."""
    files: list[Path] = []
    for controller in controllers:
        files += _glob(flux_crd_dir(controller), "*.yaml")
    return files


# ------------------------------------------------------------------ VolumeSnapshot


def _snapshot_crd_dir() -> Path:
    return _module(SNAPSHOT_CLIENT_MODULE, SNAPSHOTTER_VERSION) / "config" / "crd"


def snapshot_crd_files(include_group: bool = True) -> list[Path]:
    """VolumeSnapshotClass/Content/VolumeSnapshot CRDs (snapshot.storage.k8s.io v1)
    from the ``external-snapshotter/client/v8`` module (the parent module's zip does
    not contain ``client/``, which is a separate module), plus by default the
    VolumeGroupSnapshot CRDs: without those, snapshot-controller v8.7.0 retries for
    ``--retry-crd-interval-max`` (30 s) at every start before disabling group snapshots."""
    files = _glob(_snapshot_crd_dir(), "snapshot.storage.k8s.io_*.yaml")
    return files + (group_snapshot_crd_files() if include_group else [])


def group_snapshot_crd_files() -> list[Path]:
    """VolumeGroupSnapshot CRDs (groupsnapshot.storage.k8s.io: v1 served, v1beta2 stored)."""
    return _glob(_snapshot_crd_dir(), "groupsnapshot.storage.k8s.io_*.yaml")


# --------------------------------------------------------------------------- KWOK


def _kwok_dir() -> Path:
    return _module(KWOK_MODULE, KWOK_VERSION) / "kustomize"


def kwok_stage_files(lease: bool = True, profile: str = "fast") -> list[Path]:
    """The stage set kwokctl uses by default (``kustomize/stage/fast``): node
    initialisation, node heartbeat (with a Lease when ``lease``), and pod
    ready/complete/delete. ``profile="general"`` picks the slower, more realistic pod
    stages (``pod/general``: create, init containers, ready, complete, delete).
    Pass each file to ``kwok --config``; kwok exits "no stages found" without them."""
    stage = _kwok_dir() / "stage"
    heartbeat = ("node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" if lease
                 else "node/heartbeat/node-heartbeat.yaml")
    files = [stage / "node/fast/node-initialize.yaml", stage / heartbeat]
    if profile == "fast":
        files += [stage / f"pod/fast/pod-{name}.yaml" for name in ("ready", "complete", "delete")]
    elif profile == "general":
        files += _glob(stage / "pod/general", "pod-*.yaml")
    else:
        raise ValueError(f"unknown KWOK stage profile {profile!r} (fast, general)")
    return _existing(files)


def kwok_volume_stage_files() -> list[Path]:
    """KWOK stages that provision/bind/delete PVs for PVCs of StorageClass
    ``kwok-volume`` without any CSI driver (``stage/volume/fast``). Needs the
    StorageClass from :func:`kwok_volume_storage_class_file`; no VolumeSnapshots."""
    stage = _kwok_dir() / "stage" / "volume" / "fast"
    return _existing([stage / f"{name}.yaml"
                      for name in ("pvc-provision", "pv-bind", "pvc-delete", "pv-delete")])


def kwok_volume_storage_class_file() -> Path:
    """StorageClass ``kwok-volume`` (provisioner ``kwok.x-k8s.io/volume``, Immediate,
    annotated as the default class) used by :func:`kwok_volume_stage_files`."""
    return _existing([_kwok_dir() / "stage" / "volume" / "fast" / "storage-class.yaml"])[0]


def kwok_crd_files() -> list[Path]:
    """kwok.x-k8s.io CRDs: only needed with ``kwok --enable-crds=Stage,...``."""
    return _glob(_kwok_dir() / "crd" / "bases", "kwok.x-k8s.io_*.yaml")


# ----------------------------------------------------------------- hostpath CSI

# github.com/kubernetes-csi/csi-driver-host-path is refused by the module proxy (every
# tag), but k8s.io/kubernetes ships verbatim copies of its "kubernetes-latest" deploy
# manifests for the e2e tests.
_HOSTPATH_MANIFESTS = Path("test/e2e/testing-manifests/storage-csi/hostpath/hostpath")


def hostpath_csidriver_file() -> Path:
    """CSIDriver ``hostpath.csi.k8s.io`` (Persistent+Ephemeral, podInfoOnMount,
    fsGroupPolicy File; ``attachRequired`` unset, i.e. true) from k8s.io/kubernetes."""
    root = _module(KUBERNETES_MODULE, KUBERNETES_VERSION)
    return _existing([root / _HOSTPATH_MANIFESTS / "csi-hostpath-driverinfo.yaml"])[0]


def hostpath_snapshotclass_file() -> Path:
    """VolumeSnapshotClass ``csi-hostpath-snapclass`` (driver hostpath.csi.k8s.io,
    deletionPolicy Delete) from k8s.io/kubernetes."""
    root = _module(KUBERNETES_MODULE, KUBERNETES_VERSION)
    return _existing([root / _HOSTPATH_MANIFESTS / "csi-hostpath-snapshotclass.yaml"])[0]
