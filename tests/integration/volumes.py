"""Where a sandbox PVC's bytes live: the CSI hostpath driver's directory for its volume.

Shared by the end-to-end tests that write known bytes, "migrate" them and check that a
rollback brings them back.
"""

from __future__ import annotations

from pathlib import Path

from fluxup.sandbox.cluster import csi_state_dir
from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.processes import wait_until


def pv_dir(sb: Sandbox, volume: str) -> Path:
    """The driver's directory of PersistentVolume ``volume``."""
    pv = sb.get_json("pv", volume)
    assert pv is not None, f"PersistentVolume {volume} not found"
    path = csi_state_dir(sb) / str(pv["spec"]["csi"]["volumeHandle"])
    assert path.is_dir(), f"hostpath volume {path} missing"
    return path


def bound_volume(sb: Sandbox, namespace: str, pvc: str, timeout: float = 120) -> str:
    """The PersistentVolume PVC ``namespace/pvc`` is bound to, once it is Bound."""
    def bound() -> str | None:
        obj = sb.get_json("pvc", pvc, "-n", namespace) or {}
        if (obj.get("status") or {}).get("phase") != "Bound":
            return None
        return str((obj.get("spec") or {}).get("volumeName") or "") or None

    return wait_until(f"PVC {namespace}/{pvc} to be Bound", bound, timeout)


def volume_dir(sb: Sandbox, namespace: str, pvc: str) -> Path:
    """The driver's directory of the volume PVC ``namespace/pvc`` is bound to."""
    return pv_dir(sb, bound_volume(sb, namespace, pvc))
