"""How long a rollback takes, split by phase, and per GiB restored.

Runs on the full sandbox (real Flux, KWOK, the CSI snapshot stack, the sandbox's CSI
driver, which archives and unpacks real bytes) with FluxUp's webhook and operator. For
each size an app is deployed, each of its two volumes is filled with that many random
(incompressible) bytes, the app is upgraded by a kubectl UpgradeRequest, and then rolled
back with a RollbackRequest. Phase times are observed by polling the request (~0.2 s
resolution), so every figure is ± that much; the restore work itself is done by the
sandbox's CSI driver on the same 2 cores as everything else.

    .venv/bin/python benchmarks/rollback.py [--dir SANDBOX_DIR] [--mib 64 256]
"""

from __future__ import annotations

import argparse
import itertools
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fluxup.api.rollbackrequest import RollbackPhase
from fluxup.sandbox.cluster import csi_state_dir
from fluxup.sandbox.controlplane import Sandbox, down, up
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.seed import DemoApp
from fluxup.sandbox.stack import Stack, start_stack

PHASES = tuple(p.value for p in RollbackPhase if p.value not in ("Succeeded", "Failed"))
STARTED = time.monotonic()
#: From the start of RestoringVolumes until every restored claim is Bound: the copy.
BOUND = "restore->Bound"


def _say(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {text}", flush=True)


def _get(sb: Sandbox, *args: str) -> dict[str, Any]:
    return sb.get_json(*args) or {}


def _wait(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError(what)


def _fill(sb: Sandbox, namespace: str, pvc: str, mib: int) -> None:
    volume = _wait(f"PVC {pvc} Bound", lambda: _get(sb, "pvc", pvc, "-n", namespace)
                   .get("spec", {}).get("volumeName"), 300)
    handle = _get(sb, "pv", volume)["spec"]["csi"]["volumeHandle"]
    with (csi_state_dir(sb) / handle / "fill.bin").open("wb") as out:
        for _ in range(mib):
            out.write(secrets.token_bytes(1 << 20))


def _restored(sb: Sandbox, app: DemoApp, pvcs: list[str]) -> bool:
    """Every claim is the restored one (dataSource set) and Bound: its bytes are back."""
    for pvc in pvcs:
        obj = _get(sb, "pvc", pvc, "-n", app.namespace)
        if not (obj.get("spec") or {}).get("dataSource"):
            return False
        if (obj.get("status") or {}).get("phase") != "Bound":
            return False
    return True


def _finished(sb: Sandbox, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    obj = _get(sb, kind, name, "-n", namespace)
    return obj if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None


def _round(stack: Stack, fleet: Fleet, mib: int) -> dict[str, float]:
    sb = stack.sandbox
    suffix = secrets.token_hex(3)
    app = DemoApp(f"bench-rb-{suffix}", f"bench-rb-{suffix}")
    _say(f"{mib} MiB per volume: deploying {app.namespace}/{app.name} 1.0.0")
    fleet.add_app(app)
    fleet.wait_released(app, "1.0.0")
    stack.enrol(app.namespace)
    sb.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
        "metadata": {"name": app.name, "namespace": app.namespace},
        "spec": {"helmReleaseRef": {"name": app.name}, "timeouts": {"snapshot": "30m"}}}))
    sb.kubectl("wait", "--for=condition=Ready", "--timeout=180s", "-n", app.namespace,
               f"managedapp/{app.name}")
    pvcs = [p["name"] for p in _get(sb, "managedapp", app.name, "-n", app.namespace)
            ["status"]["pvcs"]]
    for pvc in pvcs:
        _fill(sb, app.namespace, pvc, mib)
    _say(f"filled {len(pvcs)} volumes with {mib} MiB each; upgrading to 1.1.0 (snapshots)")
    for kind, name, spec in (
        ("UpgradeRequest", "up", {"managedAppRef": {"name": app.name}, "targetVersion": "1.1.0"}),
        ("RollbackRequest", "undo", {"upgradeRequestRef": {"name": "up"}}),
    ):
        sb.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "fluxup.dev/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": app.namespace}, "spec": spec}))
        if kind == "UpgradeRequest":
            done = _wait("upgrade", lambda: _finished(sb, "upgraderequest", app.namespace, "up"),
                         1800)
            assert done["status"]["phase"] == "Succeeded", done["status"]
            _say("upgraded; rolling back")
    marks: dict[str, float] = {}
    started = time.monotonic()
    while True:
        obj = _get(sb, "rollbackrequest", "undo", "-n", app.namespace)
        phase = (obj.get("status") or {}).get("phase") or "Pending"
        if phase not in marks:
            marks[phase] = time.monotonic() - started
            _say(f"rollback {phase}")
        if "RestoringVolumes" in marks and BOUND not in marks and _restored(sb, app, pvcs):
            marks[BOUND] = time.monotonic() - started  # the driver copied the bytes back
            _say("restored claims Bound (data copied from the snapshots)")
        if phase in ("Succeeded", "Failed"):
            if phase == "Failed":
                raise RuntimeError(obj["status"].get("message"))
            break
        if time.monotonic() - started > 1800:
            raise TimeoutError(f"rollback did not finish: {marks}")
        time.sleep(0.2)
    order = [p for p in (*PHASES, "Succeeded") if p in marks]
    durations = {a: marks[b] - marks[a] for a, b in itertools.pairwise(order)}
    durations["total"] = marks["Succeeded"]
    durations[BOUND] = marks.get(BOUND, float("nan")) - marks["RestoringVolumes"]
    sb.kubectl("delete", "namespace", app.namespace, "--wait=false")
    return durations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="reuse/start the sandbox here (default: a temp dir)")
    parser.add_argument("--mib", type=int, nargs="+", default=[64, 256],
                        help="MiB of random data per volume (two volumes per app)")
    args = parser.parse_args()
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="fluxup-bench-"))
    rows = []
    stack: Stack | None = None
    try:
        sb = up(directory, full=True)
        stack = start_stack(sb, directory / "bench-rollback",
                            label=f"fluxup.dev/bench={secrets.token_hex(3)}")
        fleet = Fleet.of(sb)
        for mib in args.mib:
            rows.append((mib, _round(stack, fleet, mib)))
    finally:
        if stack is not None:
            stack.stop()
        if not args.dir:  # a sandbox we started ourselves
            down(directory)
    shown = [p for p in PHASES if any(p in r for _, r in rows)]
    print("\nseconds per phase (a phase left within one poll shows nan)")
    print("MiB restored | " + " | ".join(shown) + f" | total | {BOUND} | s per GiB copied")
    for mib, row in rows:
        restored = 2 * mib / 1024
        cells = " | ".join(f"{row.get(p, float('nan')):.2f}" for p in shown)
        print(f"{2 * mib:12} | {cells} | {row['total']:.2f} | {row[BOUND]:.2f} | "
              f"{row[BOUND] / restored:.2f}")
    if len(rows) >= 2:  # the marginal cost: fixed overheads cancel out
        (small, a), (large, b) = rows[0], rows[-1]
        gib = 2 * (large - small) / 1024
        print(f"marginal: {(b[BOUND] - a[BOUND]) / gib:.2f} s per extra GiB restored "
              f"(copy), {(b['total'] - a['total']) / gib:.2f} s per extra GiB (whole rollback)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
