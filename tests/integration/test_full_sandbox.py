"""The full sandbox's real collaborators: Git → Flux → helm-controller → KWOK; CSI snapshots.

No FluxUp component runs here: these tests prove the sandbox itself behaves like a real
cluster, which every FluxUp end-to-end test relies on.
"""

from __future__ import annotations

import json
import secrets

import pytest

from fluxup.logic import yamledit
from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.processes import wait_until
from fluxup.sandbox.seed import DemoApp
from tests.integration.volumes import volume_dir

pytestmark = [pytest.mark.sandbox, pytest.mark.full]


def _json(sb: Sandbox, *args: str) -> dict:
    return json.loads(sb.kubectl(*args, "-o", "json").stdout)


def test_git_commit_upgrades_release_through_flux(sandbox: Sandbox, fleet: Fleet) -> None:
    app = DemoApp(f"chain-{secrets.token_hex(3)}", f"chain-{secrets.token_hex(3)}")
    fleet.add_app(app)
    fleet.wait_released(app, "1.0.0")
    path = f"flux/apps/{app.name}/helmrelease.yaml"
    text = fleet.read(path)
    fleet.commit(
        {path: yamledit.edit_chart_version(text, name=app.name, version="1.1.0")},
        f"bump {app.name} to 1.1.0",
    )
    hr = fleet.wait_released(app, "1.1.0")
    history = hr["status"]["history"]
    assert [h["chartVersion"] for h in history[:2]] == ["1.1.0", "1.0.0"]

    def pods_ready() -> bool:
        sts = _json(
            sandbox,
            "get",
            "statefulset",
            "-n",
            app.namespace,
            "-l",
            f"app.kubernetes.io/instance={app.name}",
        )["items"]
        deps = _json(
            sandbox,
            "get",
            "deployment",
            "-n",
            app.namespace,
            "-l",
            f"app.kubernetes.io/instance={app.name}",
        )["items"]
        workloads = sts + deps
        return bool(workloads) and all(
            (w.get("status") or {}).get("readyReplicas", 0) == w["spec"]["replicas"]
            and (w.get("status") or {}).get("observedGeneration") == w["metadata"]["generation"]
            for w in workloads
        )

    wait_until("KWOK to make the upgraded pods Ready", pods_ready, 120)
    pods = _json(sandbox, "get", "pods", "-n", app.namespace)["items"]
    assert pods
    assert all(p["status"]["phase"] == "Running" for p in pods)


def _pvc(name: str, namespace: str, snapshot: str | None = None) -> str:
    source = (
        (
            f"  dataSource:\n    apiGroup: snapshot.storage.k8s.io\n"
            f"    kind: VolumeSnapshot\n    name: {snapshot}\n"
        )
        if snapshot
        else ""
    )
    return (
        f"apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\n"
        f"  namespace: {namespace}\nspec:\n  accessModes: [ReadWriteOnce]\n"
        f"  resources:\n    requests:\n      storage: 1Mi\n{source}"
    )


def test_snapshot_restores_original_bytes(sandbox: Sandbox, namespace: str) -> None:
    sandbox.kubectl("apply", "-f", "-", input=_pvc("data", namespace))
    volume = volume_dir(sandbox, namespace, "data")
    original = secrets.token_bytes(4096)
    (volume / "db.bin").write_bytes(original)
    sandbox.kubectl(
        "apply",
        "-f",
        "-",
        input=(
            "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\n"
            f"metadata:\n  name: before\n  namespace: {namespace}\n"
            "spec:\n  volumeSnapshotClassName: csi-hostpath-snapclass\n"
            "  source:\n    persistentVolumeClaimName: data\n"
        ),
    )
    wait_until(
        "VolumeSnapshot ReadyToUse",
        lambda: (
            _json(sandbox, "get", "volumesnapshot", "before", "-n", namespace).get("status") or {}
        ).get("readyToUse"),
        60,
    )
    (volume / "db.bin").write_bytes(b"overwritten by a bad migration")
    sandbox.kubectl("apply", "-f", "-", input=_pvc("restored", namespace, snapshot="before"))
    restored = volume_dir(sandbox, namespace, "restored")
    assert restored != volume
    assert (restored / "db.bin").read_bytes() == original
    assert (volume / "db.bin").read_bytes() == b"overwritten by a bad migration"
