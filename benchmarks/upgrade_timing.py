"""How long a gated upgrade takes, against the same upgrade with FluxUp absent.

Runs on the full sandbox (real Flux, KWOK, CSI snapshots) with FluxUp's webhook and
operator. Two apps of the same chart are upgraded through the same path — a commit to
Git, then a requested Flux reconcile — one unmanaged, one under a ManagedApp. For the
managed one it also measures, from the objects themselves, the moments the gate held the
release, all snapshots were ReadyToUse, and FluxUp released it (approved + un-suspended).
Observation is by polling the apiserver (one ``kubectl get`` of all objects, ~0.1 s
resolution), so every figure is ± that much.

    .venv/bin/python benchmarks/upgrade_timing.py [--dir SANDBOX_DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fluxup.logic import yamledit
from fluxup.sandbox.controlplane import Sandbox, down, up
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.seed import DemoApp
from fluxup.sandbox.stack import start_stack

VERSIONS = ("1.0.0", "1.1.0", "1.2.0", "2.0.0")


def _snapshot(sb: Sandbox, namespace: str) -> dict[str, Any]:
    out = sb.kubectl("get", "helmreleases,volumesnapshots,upgraderequests", "-n", namespace,
                     "-o", "json").stdout
    items = json.loads(out)["items"]
    return {
        "hr": next((i for i in items if i["kind"] == "HelmRelease"), {}),
        "snaps": [i for i in items if i["kind"] == "VolumeSnapshot"],
        "requests": [i for i in items if i["kind"] == "UpgradeRequest"],
    }


def _released_at(hr: dict[str, Any], version: str) -> bool:
    status = hr.get("status") or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True"
                for c in status.get("conditions") or [])
    history = status.get("history") or [{}]
    return (ready and status.get("observedGeneration") == hr["metadata"]["generation"]
            and history[0].get("chartVersion") == version)


def _bump(fleet: Fleet, app: DemoApp, version: str) -> float:
    path = f"flux/apps/{app.name}/helmrelease.yaml"
    text = fleet.read(path)
    fleet.commit({path: yamledit.edit_chart_version(text, name=app.name, version=version)},
                 f"bench: {app.name} -> {version}")
    started = time.monotonic()
    fleet.sync(app.name)
    return started


def _measure(sb: Sandbox, fleet: Fleet, app: DemoApp, version: str,
             gated: bool) -> dict[str, float]:
    started = _bump(fleet, app, version)
    marks: dict[str, float] = {}
    known = {s["metadata"]["name"] for s in _snapshot(sb, app.namespace)["snaps"]}
    while time.monotonic() - started < 300:
        now = time.monotonic() - started
        seen = _snapshot(sb, app.namespace)
        hr = seen["hr"]
        notes = (hr.get("metadata") or {}).get("annotations") or {}
        if gated:
            if "held" not in marks and (hr.get("spec") or {}).get("suspend") and \
                    json.loads(notes.get("fluxup.dev/held", "{}")).get("chart") == version:
                marks["held"] = now
            new = [s for s in seen["snaps"] if s["metadata"]["name"] not in known]
            if "snapshots_ready" not in marks and new and all(
                    (s.get("status") or {}).get("readyToUse") for s in new):
                marks["snapshots_ready"] = now
            approved = json.loads(notes.get("fluxup.dev/approved", "{}")).get("chart")
            if "released" not in marks and approved == version and \
                    not (hr.get("spec") or {}).get("suspend"):
                marks["released"] = now
        if _released_at(hr, version):
            marks["helm_ready"] = now
            if not gated:
                return marks
            done = [r for r in seen["requests"] if (r.get("status") or {}).get("phase") ==
                    "Succeeded" and r["spec"].get("targetVersion") == version]
            if done:
                marks["request_succeeded"] = now
                return marks
        fleet.sync(app.name) if now % 10 < 0.15 else None
        time.sleep(0.05)
    raise TimeoutError(f"{app.name} did not reach {version}: {marks}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="reuse/start the sandbox here (default: a temp dir)")
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 4))
    args = parser.parse_args()
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="fluxup-bench-"))
    sb = up(directory, full=True)
    label = f"fluxup.dev/bench={secrets.token_hex(3)}"
    stack = start_stack(sb, directory / "bench-fluxup", label=label)
    fleet = Fleet.of(sb)
    suffix = secrets.token_hex(3)
    plain = DemoApp(f"plain-{suffix}", f"plain-{suffix}")
    gated = DemoApp(f"gated-{suffix}", f"gated-{suffix}")
    for app in (plain, gated):
        fleet.add_app(app)
        fleet.wait_released(app, "1.0.0")
    stack.enrol(gated.namespace)
    sb.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
        "metadata": {"name": gated.name, "namespace": gated.namespace},
        "spec": {"helmReleaseRef": {"name": gated.name}}}))
    sb.kubectl("wait", "--for=condition=Ready", "--timeout=120s", "-n", gated.namespace,
               f"managedapp/{gated.name}")
    rows = []
    for version in VERSIONS[1:1 + args.rounds]:
        rows.append((version, _measure(sb, fleet, plain, version, False),
                     _measure(sb, fleet, gated, version, True)))
    print("\nupgrade  | without FluxUp | with FluxUp | gate held | snapshots ready | released"
          " | release after snapshots ready")
    nan = float("nan")
    for version, p, g in rows:
        held, ready, released = (g.get(k, nan) for k in ("held", "snapshots_ready", "released"))
        print(f"{version:8} | {p['helm_ready']:13.2f}s | {g['helm_ready']:10.2f}s | "
              f"{held:8.2f}s | {ready:14.2f}s | {released:7.2f}s | {released - ready:.2f}s")
    overhead = [g["helm_ready"] - p["helm_ready"] for _, p, g in rows]
    lag = [g["released"] - g["snapshots_ready"] for _, _, g in rows
           if "released" in g and "snapshots_ready" in g]
    print(f"\nmedian added time per upgrade: {statistics.median(overhead):.2f}s; "
          f"median release after snapshots ReadyToUse: "
          f"{statistics.median(lag) if lag else float('nan'):.2f}s "
          f"(observation resolution ~0.1s)")
    stack.stop()
    if not args.dir:  # a sandbox we started ourselves
        down(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
