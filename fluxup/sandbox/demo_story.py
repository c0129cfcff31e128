"""``fluxup demo --story``: the automated story, played on the demo's second app.

Called by :func:`fluxup.sandbox.demo.run_demo` before it prints the walkthrough (which
uses the first app, so a person still has an untouched app to click through). On
``demo-oci`` (chart from the OCI registry through its own OCIRepository) it writes known
data into the volumes, pushes an OCIRepository tag bump to Git as a developer would,
prints each step as it happens — Flux applies, the admission gate holds, FluxUp snapshots
the volumes, releases, helm-controller upgrades — plays the new version's one-way
migration (it overwrites the data) and rolls back with one RollbackRequest: the volumes
come back from the snapshots byte for byte and Git is reverted.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fluxup.errors import SandboxError
from fluxup.logic import yamledit
from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.demo import (
    APPROVE,
    DATA_FILE,
    START,
    DemoSite,
    Say,
    manage,
    read_data,
    volume_dir,
    write_data,
)
from fluxup.sandbox.seed import DEMO_APPS, DemoApp

__all__ = ["STORY_APP", "play_story"]

STORY_APP: DemoApp = DEMO_APPS[1]


def _get(sb: Sandbox, *args: str) -> dict[str, Any]:
    return sb.get_json(*args) or {}


def play_story(site: DemoSite, say: Say) -> int:
    """Play the story on :data:`STORY_APP`; 0 when every step did what it should."""
    sb, fleet, app = site.sandbox, site.fleet, STORY_APP
    manage(sb, fleet, app)
    say(f"story: FluxUp manages {app.namespace}/{app.name} (chart {START} from the OCI "
        "registry)")
    data = write_data(sb, f"{app.name} data written while {START} ran", app)
    say(f"story: wrote the app's data ({DATA_FILE}) into {len(data)} volumes")
    path = f"flux/apps/{app.name}/ocirepository.yaml"
    fleet.commit({path: yamledit.edit_oci_tag(fleet.read(path), name=app.name, tag=APPROVE)},
                 f"chore: bump {app.name} to {APPROVE} (pushed by hand, not through FluxUp)")
    fleet.sync(app.name)
    say(f"story: pushed a commit to Git bumping {app.name} {START} -> {APPROVE}")
    request = _follow(sb, app, APPROVE, say)
    status = request.get("status") or {}
    if status.get("phase") != "Succeeded":
        say(f"story: upgrade ended {status.get('phase')}: {status.get('message')}; "
            f"operator log: {site.stack.operator_log}")
        return 1
    for snap in status.get("snapshots") or []:
        say(f"story:   snapshot {snap['name']} of PVC {snap['pvc']}: "
            f"readyToUse={snap['readyToUse']}")
    for pvc in data:
        (volume_dir(sb, app.namespace, pvc) / DATA_FILE).write_bytes(
            f"migrated by {APPROVE}: the old format is gone\n".encode())
    say(f"story: {APPROVE} ran its one-way migration: the data in every volume is overwritten")
    rollback = _rollback(sb, app, request["metadata"]["name"], say)
    rstatus = rollback.get("status") or {}
    if rstatus.get("phase") != "Succeeded":
        say(f"story: rollback ended {rstatus.get('phase')}: {rstatus.get('message')}; "
            f"operator log: {site.stack.operator_log}")
        return 1
    back = read_data(sb, app)
    for pvc, content in data.items():
        if back.get(pvc) != content:
            say(f"story: PVC {pvc} does not hold the original data after the rollback")
            return 1
        say(f"story:   PVC {pvc}: original data back, byte for byte")
    say(f"story: Git reverted by commit {str(rstatus.get('revertCommit'))[:12]}; "
        f"{app.name} runs {START} again")
    return 0


def _rollback(sb: Sandbox, app: DemoApp, upgrade: str, say: Say) -> dict[str, Any]:
    """Create a RollbackRequest of ``upgrade`` and print its phases until it finishes."""
    name = f"{upgrade}-undo-{int(time.time())}"
    sb.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "RollbackRequest",
        "metadata": {"name": name, "namespace": app.namespace},
        "spec": {"upgradeRequestRef": {"name": upgrade}}}))
    say(f"story: created RollbackRequest {name} (the one action a user takes)")
    phase = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        rollback = _get(sb, "rollbackrequest", name, "-n", app.namespace)
        status = rollback.get("status") or {}
        if status.get("phase") != phase:
            phase = status.get("phase")
            say(f"story: RollbackRequest {name}: {phase}"
                + (f" — {status['message']}" if status.get("message") not in (None, phase)
                   else ""))
        if phase in ("Succeeded", "Failed"):
            return rollback
        time.sleep(0.25)
    raise SandboxError(f"the rollback {name} did not finish within 300s")


def _follow(sb: Sandbox, app: DemoApp, target: str, say: Say) -> dict[str, Any]:
    """Print what happens until the UpgradeRequest for ``target`` finishes; return it."""
    seen_hold = False
    phase = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        notes: dict[str, str] = {}
        for kind in ("ocirepository", "helmrelease"):  # the gate holds what carries the change
            notes.update((_get(sb, kind, app.name, "-n", app.namespace)
                          .get("metadata") or {}).get("annotations") or {})
        if not seen_hold and "fluxup.dev/held" in notes:
            seen_hold = True
            say(f"story: Flux applied {target}; the admission gate HELD it "
                f"(held={notes['fluxup.dev/held']})")
        items = _get(sb, "upgraderequests", "-n", app.namespace).get("items") or []
        mine = [r for r in items if (r.get("spec") or {}).get("origin") == "git"]
        if mine:
            request: dict[str, Any] = mine[-1]
            status = request.get("status") or {}
            if status.get("phase") != phase:
                phase = status.get("phase")
                detail = status.get("message", "")
                say(f"story: UpgradeRequest {request['metadata']['name']} "
                    f"(origin {request['spec'].get('origin')}): {phase}"
                    + (f" — {detail}" if detail and detail != phase else ""))
            if phase in ("Succeeded", "Failed"):
                return request
        time.sleep(0.25)
    raise SandboxError(f"the upgrade of {app.name} to {target} did not finish within 300s")
