"""Wall time of one real Renovate scan of the sandbox fleet, as FluxUp runs it.

Runs on the full sandbox (Git server, Helm repository, OCI registry, Flux) with FluxUp's
webhook and operator. Adds ``--apps`` apps to the fleet (alternately chart from the Helm
repository and from an OCIRepository; image in the OCI registry), each with a
ManagedApp whose versionPolicy names its image, waits until the operator has discovered
their Git files, then times ``--rounds`` scans through the operator's scan path
(:func:`fluxup.scanner.scan_once`, what ``fluxup scan`` and the schedule run: read the
fleet through Flux's GitRepository, check out its YAML, run Node 24 + Renovate 44 in
lookup mode, map the report, write every ManagedApp's status). Prints, per round, the
whole scan's wall time and the Renovate process's share; asserts nothing.

    .venv/bin/python benchmarks/renovate_scan.py [--dir SANDBOX_DIR] [--apps 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from fluxup.sandbox.controlplane import down, up
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.processes import wait_until
from fluxup.sandbox.registry import DEMO_IMAGE_REPO
from fluxup.sandbox.renovate import ensure_renovate
from fluxup.sandbox.seed import DemoApp
from fluxup.sandbox.stack import Stack, start_stack
from fluxup.scanner import scan_once
from fluxup.settings import Settings


def _add_apps(stack: Stack, fleet: Fleet, count: int) -> list[DemoApp]:
    tag = secrets.token_hex(2)
    apps = [DemoApp(f"bench-rs-{tag}-{i}", f"bench-rs-{tag}-{i}",
                    source="oci" if i % 2 else "helmrepository")
            for i in range(count)]
    image = f"{fleet.registry_host}/{DEMO_IMAGE_REPO}"
    for app in apps:
        fleet.add_app(app)
    for app in apps:
        fleet.wait_released(app, app.chart_version)
        stack.enrol(app.namespace)
        stack.sandbox.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
            "metadata": {"name": app.name, "namespace": app.namespace},
            "spec": {"helmReleaseRef": {"name": app.name},
                     "versionPolicy": {"images": [{"name": image, "valuesPath": "image.tag"}]}},
        }))
    for app in apps:
        def discovered(app: DemoApp = app) -> object:
            obj = stack.sandbox.get_json("managedapp", app.name, "-n", app.namespace) or {}
            return ((obj.get("status") or {}).get("git") or {}).get("file")

        wait_until(f"ManagedApp {app.name} to know its Git file", discovered, 180)
    return apps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="reuse/start the sandbox here (default: a temp dir)")
    parser.add_argument("--apps", type=int, default=4, help="ManagedApps to add to the fleet")
    parser.add_argument("--rounds", type=int, default=3, help="scans to time")
    args = parser.parse_args()
    renovate = ensure_renovate(verbose=True)
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="fluxup-bench-"))
    sb = up(directory, full=True)
    stack: Stack | None = None
    rows: list[tuple[float, float, int, int]] = []
    try:  # whatever fails, a sandbox we started is taken down again
        stack = start_stack(sb, directory / "bench-renovate",
                            label=f"fluxup.dev/bench={secrets.token_hex(3)}")
        fleet = Fleet.of(sb)
        settings = Settings.from_env({
            "FLUXUP_KUBECONFIG": str(stack.work / "operator.kubeconfig"),
            "FLUXUP_WORK_DIR": str(directory / "bench-renovate" / "scan-work"),
            "FLUXUP_RENOVATE_NODE": str(renovate.node),
            "FLUXUP_RENOVATE_JS": str(renovate.renovate_js),
            "FLUXUP_RENOVATE_INSECURE_REGISTRIES": fleet.registry_host,
            "FLUXUP_RENOVATE_INTERNAL_HOSTS": "127.0.0.1",
        })
        _add_apps(stack, fleet, args.apps)
        for _ in range(args.rounds):
            started = time.monotonic()
            summaries = asyncio.run(scan_once(settings))
            wall = time.monotonic() - started
            (summary,) = summaries  # one fleet repository
            if not summary.ok:
                raise SystemExit(f"scan failed: {summary.message}")
            rows.append((wall, summary.duration_seconds, summary.apps, summary.candidates))
            print(f"scan: {wall:.2f} s wall, Renovate {summary.duration_seconds:.2f} s, "
                  f"{summary.apps} app(s), {summary.candidates} candidate(s)", flush=True)
    finally:
        if stack is not None:
            stack.stop()
        if not args.dir:  # a sandbox we started ourselves
            down(directory)
    walls = [r[0] for r in rows]
    node = [r[1] for r in rows]
    warm = walls[1:] or walls
    print(f"\n{rows[0][2]} ManagedApps (the fleet also holds its 2 seeded apps), "
          f"{rows[0][3]} candidates: first scan {walls[0]:.2f} s wall (Renovate "
          f"{node[0]:.2f} s; cold file cache), then median {statistics.median(warm):.2f} s "
          f"(min {min(warm):.2f}, max {max(warm):.2f}; Renovate "
          f"{statistics.median(node[1:] or node):.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
