"""``fluxup demo``: FluxUp's main job, shown live on the local sandbox cluster.

Brings up the full sandbox (real Flux, KWOK nodes, CSI snapshots, a Git server), starts
FluxUp (webhook + operator under its shipped RBAC), puts the seeded ``demo-helm`` app
under management, then does what a developer does: pushes a chart version bump to Git.
It prints every step as it happens — Flux applies, the gate holds, FluxUp snapshots the
volumes, releases, helm-controller upgrades — and leaves everything running for a look
around with kubectl. Running it again upgrades to the next version.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from fluxup.errors import SandboxError
from fluxup.logic import yamledit
from fluxup.sandbox.controlplane import Sandbox, up
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.processes import wait_until
from fluxup.sandbox.seed import DEMO_APPS
from fluxup.sandbox.stack import start_stack

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
    later = [v for v in VERSIONS if VERSIONS.index(v) > VERSIONS.index(current)] \
        if current in VERSIONS else []
    if not later:
        say(f"{app.name} already runs the newest demo chart {current}; nothing to upgrade")
        return 0
    target = later[0]
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
    kubectl = f"{sb.bin('kubectl')} --kubeconfig={sb.kubeconfig}"
    print(f"""
Done: {app.name} upgraded {current} -> {target}, with ReadyToUse snapshots taken first.
Look around (everything keeps running; `make demo-down` stops it):
  {kubectl} get fluxup -A
  {kubectl} get volumesnapshots -n {app.namespace}
  {kubectl} get helmrelease -n {app.namespace} {app.name} -o yaml
Run `make demo` again to upgrade to the next version.""", file=out, flush=True)
    return 0


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
