"""Fully populated status examples of every FluxUp kind, as the operator would write them.

Used by ``tests/api/test_models.py`` (the models round-trip them; they set every status
field the CRDs declare) and ``tests/integration/test_crds.py`` (the real apiserver
accepts them on the status subresource and prints them in its columns).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["STATUS_EXAMPLES"]

_T0 = "2026-03-01T10:00:00Z"
_T1 = "2026-03-01T10:00:05Z"
_T2 = "2026-03-01T10:04:30Z"
_DIGEST = "sha256:" + "0123456789abcdef" * 4

MANAGED_APP_STATUS: Final[dict[str, Any]] = {
    "observedGeneration": 3,
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "NewVersionDetected",
            "message": "podinfo 6.5.3 is running; 6.5.4 is available",
            "lastTransitionTime": _T0,
            "observedGeneration": 3,
        },
        {
            "type": "Gated",
            "status": "True",
            "reason": "ExactVersion",
            "message": "chart version 6.5.3 is exact; changes are held until snapshots are ready",
            "lastTransitionTime": _T0,
            "observedGeneration": 3,
        },
        {
            "type": "UpdateAvailable",
            "status": "True",
            "reason": "NewVersionDetected",
            "message": "chart 6.5.4 available (current: 6.5.3)",
            "lastTransitionTime": _T1,
        },
    ],
    "currentVersion": "6.5.3",
    "currentImages": [
        {"name": "ghcr.io/stefanprodan/podinfo", "valuesPath": "image.tag", "tag": "6.5.3"},
    ],
    "availableUpdate": {
        "version": "6.5.4",
        "images": [
            {"name": "ghcr.io/stefanprodan/podinfo", "valuesPath": "image.tag", "tag": "6.5.4"},
        ],
        "type": "patch",
        "detectedAt": _T1,
    },
    "availableUpdates": [
        {
            "source": "chart",
            "name": "podinfo",
            "version": "6.5.4",
            "type": "patch",
            "currentVersion": "6.5.3",
            "detectedAt": _T1,
        },
        {
            "source": "image",
            "name": "ghcr.io/stefanprodan/podinfo",
            "version": "6.6.0",
            "type": "minor",
            "valuesPath": "image.tag",
            "currentVersion": "6.5.3",
            "detectedAt": _T1,
        },
    ],
    "helmRelease": {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "name": "podinfo",
        "namespace": "podinfo",
        "chartName": "podinfo",
        "appVersion": "6.5.3",
        "targetNamespace": "podinfo",
    },
    "chartSource": {
        "kind": "HelmRepository",
        "name": "podinfo",
        "namespace": "flux-system",
        "url": "https://stefanprodan.github.io/podinfo",
    },
    "git": {
        "repositoryUrl": "https://git.example.com/homelab/fleet.git",
        "branch": "main",
        "path": "./apps",
        "file": "apps/podinfo/helmrelease.yaml",
        "gitRepositoryRef": {"name": "fleet", "namespace": "flux-system"},
    },
    "pvcs": [
        {
            "name": "data-podinfo-0",
            "namespace": "podinfo",
            "storageClassName": "csi-hostpath-sc",
            "capacity": "1Gi",
        },
    ],
    "workloads": [
        {"kind": "StatefulSet", "name": "podinfo", "namespace": "podinfo", "replicas": 1}
    ],
    "volumeSnapshotClassName": "csi-hostpath-snapclass",
    "lastUpgrade": {
        "upgradeRequest": "podinfo-6-5-3",
        "phase": "Succeeded",
        "fromVersion": "6.5.2",
        "toVersion": "6.5.3",
        "startedAt": _T0,
        "completedAt": _T2,
    },
    "activeRequest": {"kind": "UpgradeRequest", "name": "podinfo-6-5-4"},
}

UPGRADE_REQUEST_STATUS: Final[dict[str, Any]] = {
    "phase": "Failed",
    "observedGeneration": 1,
    "conditions": [
        {
            "type": "Ready",
            "status": "False",
            "reason": "HealthCheckFailed",
            "message": "GET http://podinfo.podinfo.svc:9898/readyz answered 503, expected 200",
            "lastTransitionTime": _T2,
            "observedGeneration": 1,
        },
        {
            "type": "SnapshotsReady",
            "status": "True",
            "reason": "Succeeded",
            "message": "1 of 1 snapshots ReadyToUse",
            "lastTransitionTime": _T1,
        },
    ],
    "phaseStartedAt": _T2,
    "deadline": "2026-03-01T10:09:30Z",
    "startedAt": _T0,
    "completedAt": _T2,
    "message": "health check failed after upgrade to 6.5.4; rolling back (podinfo-6-5-4-rollback)",
    "previousIdentity": {
        "version": "6.5.3",
        "images": [
            {"name": "ghcr.io/stefanprodan/podinfo", "valuesPath": "image.tag", "tag": "6.5.3"}
        ],
    },
    "targetIdentity": {
        "version": "6.5.4",
        "images": [
            {
                "name": "ghcr.io/stefanprodan/podinfo",
                "valuesPath": "image.tag",
                "tag": f"6.5.4@{_DIGEST}",
            }
        ],
    },
    "applyRequestedAt": "2026-03-01T10:01:00Z",
    "gitCommit": "3f1c2b9e8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e",
    "gitDiff": (
        "--- a/apps/podinfo/helmrelease.yaml\n+++ b/apps/podinfo/helmrelease.yaml\n"
        "@@ -9 +9 @@\n-      version: 6.5.3\n+      version: 6.5.4\n"
    ),
    "snapshots": [
        {
            "name": "podinfo-6-5-4-data-podinfo-0",
            "namespace": "podinfo",
            "pvc": "data-podinfo-0",
            "readyToUse": True,
            "restoreSize": "1Gi",
        },
        {
            "name": "podinfo-6-5-4-cache-podinfo-0",
            "namespace": "podinfo",
            "pvc": "cache-podinfo-0",
            "readyToUse": False,
            "error": "Failed to check and update snapshot content: driver busy",
        },
    ],
    "quiescedReplicas": [
        {"kind": "StatefulSet", "name": "podinfo", "namespace": "podinfo", "replicas": 2}
    ],
    "preflight": [
        {"name": "HelmReleaseReady", "result": "Passed"},
        {"name": "SnapshotClass", "result": "Passed", "message": "csi-hostpath-snapclass"},
        {"name": "MajorUpdate", "result": "Warning", "message": "6.x to 7.x may need migration"},
    ],
    "rollbackRequest": "podinfo-6-5-4-rollback",
}

ROLLBACK_REQUEST_STATUS: Final[dict[str, Any]] = {
    "phase": "Succeeded",
    "observedGeneration": 1,
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Succeeded",
            "message": "podinfo is back at 6.5.3 with the data of 2026-03-01T10:00:05Z",
            "lastTransitionTime": _T2,
            "observedGeneration": 1,
        },
        {
            "type": "VolumesRestored",
            "status": "True",
            "reason": "Succeeded",
            "message": "1 of 1 PVCs restored",
            "lastTransitionTime": _T1,
        },
    ],
    "phaseStartedAt": _T2,
    "deadline": "2026-03-01T10:09:30Z",
    "startedAt": _T0,
    "completedAt": _T2,
    "message": "rolled back to 6.5.3",
    "managedApp": "podinfo",
    "upgradeRequest": "podinfo-6-5-4",
    "fromVersion": "6.5.4",
    "toVersion": "6.5.3",
    "targetIdentity": {
        "version": "6.5.3",
        "images": [
            {"name": "ghcr.io/stefanprodan/podinfo", "valuesPath": "image.tag", "tag": "6.5.3"}
        ],
    },
    "suspendedStates": [
        {
            "kind": "Kustomization",
            "name": "apps",
            "namespace": "flux-system",
            "wasSuspended": False,
        },
        {"kind": "HelmRelease", "name": "podinfo", "namespace": "podinfo", "wasSuspended": False},
    ],
    "recordedReplicas": [
        {"kind": "StatefulSet", "name": "podinfo", "namespace": "podinfo", "replicas": 2}
    ],
    "restoredPVCs": [
        {
            "name": "data-podinfo-0",
            "namespace": "podinfo",
            "snapshot": "podinfo-6-5-4-data-podinfo-0",
            "restored": True,
            "retainedVolume": "pvc-5b1f0c7e-2f47-4a8e-9d0c-7a1e2b3c4d5e",
        }
    ],
    "revertCommit": "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b",
}

#: kind -> status example.
STATUS_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "ManagedApp": MANAGED_APP_STATUS,
    "UpgradeRequest": UPGRADE_REQUEST_STATUS,
    "RollbackRequest": ROLLBACK_REQUEST_STATUS,
}
