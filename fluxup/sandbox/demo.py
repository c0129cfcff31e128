"""``fluxup demo``: FluxUp's main job, shown live on the local sandbox cluster.

Brings up the full sandbox (real Flux, KWOK nodes, CSI snapshots, a Git server), starts
FluxUp (webhook + operator under its shipped RBAC), puts the seeded ``demo-helm`` app
under management, runs the real Renovate (``fluxup scan``) and prints the updates it
found, writes known bytes into its volumes (the app's data), then does what a developer
does: pushes a chart version bump to Git. It prints every step as it happens — Flux
applies, the gate holds, FluxUp snapshots the volumes, releases, helm-controller
upgrades — then plays the new version's one-way migration (it overwrites the data) and
rolls back with one RollbackRequest: the volumes come back from the snapshots byte for
byte and Git is reverted. Everything keeps running for a look around with kubectl.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from fluxup.errors import SandboxError
from fluxup.logic import yamledit
from fluxup.sandbox.cluster import csi_state_dir
from fluxup.sandbox.controlplane import Sandbox, up
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.processes import wait_until
from fluxup.sandbox.renovate import ensure_renovate, scan_env
from fluxup.sandbox.seed import DEMO_APPS, DemoApp
from fluxup.sandbox.stack import Stack, start_stack

__all__ = ["run_demo"]

VERSIONS = ("1.0.0", "1.1.0", "1.2.0", "2.0.0")


def _get(sb: Sandbox, *args: str) -> dict[str, Any]:
    return sb.get_json(*args) or {}


def _ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def run_demo(directory: Path, out: TextIO = sys.stdout) -> int:
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", file=out, flush=True)

    sb = up(directory, out=out, full=True)
    stack = start_stack(sb, sb.dir / "fluxup", out=out)
    fleet = Fleet.of(sb)
    app = DEMO_APPS[0]
    fleet.wait_released(app, _current(sb, app.namespace, app.name) or app.chart_version)
    sb.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
        "metadata": {"name": app.name, "namespace": app.namespace},
        "spec": {"helmReleaseRef": {"name": app.name},
                 "volumeSnapshots": {"retentionPolicy": {"keepLast": 3}}}}))
    managed = wait_until("the ManagedApp to become Ready", lambda: (
        lambda obj: obj if _ready(obj) else None)(_get(sb, "managedapp", app.name, "-n",
                                                       app.namespace)), 120)
    current = managed["status"]["currentVersion"]
    pvcs = ", ".join(p["name"] for p in managed["status"]["pvcs"])
    say(f"FluxUp manages {app.namespace}/{app.name}: chart {current}, PVCs {pvcs}")
    _scan(sb, stack, fleet, app, say)
    later = [v for v in VERSIONS if VERSIONS.index(v) > VERSIONS.index(current)] \
        if current in VERSIONS else []
    if not later:
        say(f"{app.name} already runs the newest demo chart {current}; nothing to upgrade")
        return 0
    target = later[0]
    claims = [p["name"] for p in managed["status"]["pvcs"]]
    data = {pvc: f"{app.name} data written at {current} ({pvc})\n".encode() for pvc in claims}
    for pvc, content in data.items():
        (_volume_dir(sb, app.namespace, pvc) / DATA_FILE).write_bytes(content)
    say(f"wrote the app's data ({DATA_FILE}) into {len(claims)} volumes")
    path = f"flux/apps/{app.name}/helmrelease.yaml"
    text = fleet.read(path)
    fleet.commit({path: yamledit.edit_chart_version(text, name=app.name, version=target)},
                 f"chore: bump {app.name} to {target} (pushed by hand, not through FluxUp)")
    fleet.sync(app.name)
    say(f"pushed a commit to Git bumping {app.name} {current} -> {target}; "
        "asked Flux to reconcile now")
    request = _follow(sb, app.namespace, app.name, target, say)
    status = request.get("status") or {}
    if status.get("phase") != "Succeeded":
        say(f"upgrade ended {status.get('phase')}: {status.get('message')}")
        say(f"operator log: {stack.operator_log}")
        return 1
    for snap in status.get("snapshots") or []:
        say(f"  snapshot {snap['name']} of PVC {snap['pvc']}: readyToUse={snap['readyToUse']}")
    for pvc in claims:
        (_volume_dir(sb, app.namespace, pvc) / DATA_FILE).write_bytes(
            f"migrated by {target}: the old format is gone\n".encode())
    say(f"{target} ran its one-way migration: the data in every volume is overwritten")
    rollback = _rollback(sb, app.namespace, request["metadata"]["name"], say)
    rstatus = rollback.get("status") or {}
    if rstatus.get("phase") != "Succeeded":
        say(f"rollback ended {rstatus.get('phase')}: {rstatus.get('message')}")
        say(f"operator log: {stack.operator_log}")
        return 1
    for pvc, content in data.items():
        back = (_volume_dir(sb, app.namespace, pvc) / DATA_FILE).read_bytes()
        if back != content:
            say(f"PVC {pvc} does not hold the original data after the rollback")
            return 1
        say(f"  PVC {pvc}: original data back, byte for byte")
    say(f"Git reverted by commit {str(rstatus.get('revertCommit'))[:12]}; "
        f"{app.name} runs {_current(sb, app.namespace, app.name)} again")
    kubectl = f"{sb.bin('kubectl')} --kubeconfig={sb.kubeconfig}"
    print(f"""
Done: {app.name} upgraded {current} -> {target} with ReadyToUse snapshots taken first, then
rolled back to {current} with its data restored from them.
Look around (everything keeps running; `make demo-down` stops it):
  {kubectl} get fluxup -A
  {kubectl} get volumesnapshots -n {app.namespace}
  {kubectl} get pv -l fluxup.dev/retained-by-rollback   # the volumes the rollback kept
Run `make demo` again for another round.""", file=out, flush=True)
    return 0


DATA_FILE = "demo-data.txt"


def _scan(sb: Sandbox, stack: Stack, fleet: Fleet, app: DemoApp, say: Any) -> None:
    """Run the real Renovate (lookup only) through ``fluxup scan`` as the operator's
    ServiceAccount and print what it found for ``app``."""
    say("running Renovate 44 in lookup mode over the fleet repository (fluxup scan) ...")
    env = scan_env(ensure_renovate(), stack.work / "operator.kubeconfig",
                   sb.dir / "scan-work", fleet.registry_host)
    proc = subprocess.run([sys.executable, "-m", "fluxup", "scan"], env=env, text=True,
                          capture_output=True, timeout=300, check=False)
    if proc.returncode != 0:
        say(f"the scan did not fully succeed (exit {proc.returncode}): "
            f"{(proc.stdout + proc.stderr).strip()[-500:]}")
    status = _get(sb, "managedapp", app.name, "-n", app.namespace).get("status") or {}
    found = ", ".join(f"{u.get('source')} {u.get('version')} ({u.get('type')})"
                      for u in status.get("availableUpdates") or [])
    say(f"Renovate found for {app.name}: {found or 'no updates'}; "
        f"availableUpdate {((status.get('availableUpdate') or {}).get('version'))}")


def _volume_dir(sb: Sandbox, namespace: str, pvc: str) -> Path:
    """The sandbox CSI driver's directory behind ``pvc`` (what the app's pod would mount)."""
    volume = _get(sb, "pvc", pvc, "-n", namespace)["spec"]["volumeName"]
    handle = _get(sb, "pv", volume)["spec"]["csi"]["volumeHandle"]
    return csi_state_dir(sb) / str(handle)


def _rollback(sb: Sandbox, namespace: str, upgrade: str, say: Any) -> dict[str, Any]:
    """Create a RollbackRequest of ``upgrade`` and print its phases until it finishes."""
    name = f"{upgrade}-undo-{int(time.time())}"
    sb.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "RollbackRequest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"upgradeRequestRef": {"name": upgrade}}}))
    say(f"created RollbackRequest {name} (the one action a user takes)")
    phase = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        rollback = _get(sb, "rollbackrequest", name, "-n", namespace)
        status = rollback.get("status") or {}
        if status.get("phase") != phase:
            phase = status.get("phase")
            say(f"RollbackRequest {name}: {phase}"
                + (f" — {status['message']}" if status.get("message") not in (None, phase)
                   else ""))
        if phase in ("Succeeded", "Failed"):
            return rollback
        time.sleep(0.25)
    raise SandboxError(f"the rollback {name} did not finish within 300s")


def _current(sb: Sandbox, namespace: str, name: str) -> str | None:
    history = ((_get(sb, "helmrelease", name, "-n", namespace).get("status") or {})
               .get("history") or [{}])
    version = history[0].get("chartVersion")
    return str(version) if version else None


def _follow(sb: Sandbox, namespace: str, name: str, target: str,
            say: Any) -> dict[str, Any]:
    """Print what happens until the UpgradeRequest for ``target`` finishes; return it."""
    seen_hold = False
    phase = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        hr = _get(sb, "helmrelease", name, "-n", namespace)
        notes = (hr.get("metadata") or {}).get("annotations") or {}
        if not seen_hold and "fluxup.dev/held" in notes:
            seen_hold = True
            say(f"Flux applied {target}; the admission gate HELD it "
                f"(spec.suspend={hr['spec'].get('suspend')}, held={notes['fluxup.dev/held']})")
        items = _get(sb, "upgraderequests", "-n", namespace).get("items") or []
        mine = [r for r in items if (r.get("spec") or {}).get("targetVersion") == target]
        if mine:
            request: dict[str, Any] = mine[-1]
            status = request.get("status") or {}
            if status.get("phase") != phase:
                phase = status.get("phase")
                detail = status.get("message", "")
                say(f"UpgradeRequest {request['metadata']['name']} "
                    f"(origin {request['spec'].get('origin')}): {phase}"
                    + (f" — {detail}" if detail and detail != phase else ""))
            if phase in ("Succeeded", "Failed"):
                return request
        time.sleep(0.25)
    raise SandboxError(f"the upgrade of {name} to {target} did not finish within 300s")
