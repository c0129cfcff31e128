"""Web UI response times and the operator's memory with 1,000 ManagedApps.

Creates N ManagedApps (default 1,000) with a populated status (current version, an
available update, two candidates, conditions) and N/5 UpgradeRequests in the sandbox,
starts the real operator process with the UI enabled (no-auth demo mode on 127.0.0.1,
the demo user bound to ``fluxup-viewer``), lets it reconcile, then measures sequential
requests and reads the operator's RSS from /proc:

* the inbox ``/`` (first page: 50 apps, 50 updates) and random pages ``/?page=K``, as
  served: the person's lists reused for ``FLUXUP_UI_LIST_CACHE_SECONDS`` (5 s);
* the inbox with that cache expired before every request (``--cold`` requests, 5.2 s
  apart): one impersonated cluster-wide list of each kind, 1,000 apps decoded;
* random app pages, and ``/api/apps`` (first page);
* random app pages while the operator starts up (its first pass over every app and the
  echo of its own writes: its busiest time; the UI runs on a thread and loop of its own).

All but the last are measured once the operator is at rest (its CPU under a fifth of a
core for two 5 s windows), as a fleet of 1,000 apps spends nearly all its life.

Figures include the apiserver's time: every list is read as the user.

    .venv/bin/python benchmarks/ui.py [--dir SANDBOX_DIR] [--apps 1000] [--requests 100]
                                      [--cold 15]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from kubernetes_asyncio import client, config

from fluxup.adapters.kube import KubeApi, R
from fluxup.errors import KubeConflict
from fluxup.sandbox.controlplane import Sandbox, down, up
from fluxup.sandbox.processes import free_port, wait_until

REPO = Path(__file__).resolve().parents[1]
NS_COUNT = 20


def _app(i: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
    ns = f"bench-ui-{i % NS_COUNT:02d}"
    name = f"app-{i:04d}"
    body = {"apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"helmReleaseRef": {"name": name}}}
    now = "2026-03-01T10:00:00Z"
    status = {"status": {
        "currentVersion": "1.0.0",
        "availableUpdate": {"version": "1.1.0", "type": "minor", "detectedAt": now},
        "availableUpdates": [
            {"source": "chart", "name": name, "version": "1.1.0", "type": "minor",
             "currentVersion": "1.0.0", "detectedAt": now},
            {"source": "image", "name": f"ghcr.io/example/{name}", "version": "2.0.0",
             "type": "major", "valuesPath": "image.tag", "currentVersion": "1.0.0"}],
        "chartSource": {"kind": "HelmRepository", "name": "charts", "namespace": "flux"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "NewVersionDetected",
                        "message": "1.1.0 available", "lastTransitionTime": now}],
        "pvcs": [{"name": f"{name}-data", "namespace": ns, "capacity": "1Gi"}]}}
    return ns, body, status


async def _seed(kubeconfig: Path, apps: int) -> None:
    conf = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=conf)
    async with client.ApiClient(conf) as api:
        kube = KubeApi(api, manager="fluxup-bench")
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            ns, body, status = _app(i)
            async with sem:
                with contextlib.suppress(KubeConflict):
                    await kube.create(R.MANAGEDAPP, ns, body)
                await kube.merge_patch(R.MANAGEDAPP, ns, body["metadata"]["name"], status,
                                       sub="status")
                if i % 5 == 0:
                    with contextlib.suppress(KubeConflict):
                        await kube.create(R.UPGRADEREQUEST, ns, {
                            "apiVersion": "fluxup.dev/v1alpha1", "kind": "UpgradeRequest",
                            "metadata": {"name": f"{body['metadata']['name']}-up",
                                         "namespace": ns},
                            "spec": {"managedAppRef": {"name": body["metadata"]["name"]},
                                     "dryRun": True}})

        await asyncio.gather(*(one(i) for i in range(apps)))


def _reconciled(sb: Sandbox, apps: int) -> bool:
    """Whether the operator wrote status.observedGeneration on every bench app (the
    seeded status has none)."""
    out = sb.kubectl("get", "managedapps", "--all-namespaces", "-o",
                     "jsonpath={range .items[*]}{.status.observedGeneration}{\"\\n\"}{end}",
                     check=False)
    return out.returncode == 0 and sum(1 for line in out.stdout.splitlines() if line) >= apps


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = _p95(samples)
    return (f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   "
            f"max {ordered[-1] * 1000:7.1f} ms   (n={len(ordered)})")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="sandbox directory (default: a temporary one)")
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--cold", type=int, default=15,
                        help="inbox requests each made after the list cache expired")
    args = parser.parse_args()
    owned = args.dir is None
    directory = Path(args.dir or tempfile.mkdtemp(prefix="fluxup-bench-ui-"))
    sb: Sandbox = up(directory, full=True)
    operator = None
    try:
        sb.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=fluxup-bench",
                   *[f"--filename={p}" for p in sorted((REPO / "crds").glob("*.yaml"))
                     if p.name.startswith("fluxup.dev_")],
                   f"--filename={REPO / 'manifests/operator/ui-rbac.yaml'}")
        sb.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        for n in range(NS_COUNT):
            sb.kubectl("create", "namespace", f"bench-ui-{n:02d}", check=False)
        sb.kubectl("create", "clusterrolebinding", "bench-ui-demo-viewer",
                   "--clusterrole=fluxup-viewer", "--user=fluxup-demo", check=False)
        started = time.monotonic()
        asyncio.run(_seed(sb.kubeconfig, args.apps))
        print(f"seeded {args.apps} ManagedApps and {args.apps // 5} UpgradeRequests in "
              f"{time.monotonic() - started:.1f}s")
        port = free_port()
        work = Path(tempfile.mkdtemp(prefix="fluxup-bench-ui-op-"))
        env = dict(os.environ, FLUXUP_KUBECONFIG=str(sb.kubeconfig),
                   KUBECONFIG=str(sb.kubeconfig), FLUXUP_WORK_DIR=str(work),
                   FLUXUP_UI_ENABLED="true", FLUXUP_UI_AUTH="none",
                   FLUXUP_UI_HOST="127.0.0.1", FLUXUP_UI_PORT=str(port),
                   # it acts with the sandbox's admin certificate; the operator checks at
                   # start-up that it is the user the gate trusts
                   FLUXUP_OPERATOR_USERNAME="fluxup-sandbox-admin")
        log = open(work / "operator.log", "w")  # noqa: SIM115 - lives as long as the process
        operator = subprocess.Popen([sys.executable, "-m", "fluxup", "operator"], env=env,
                                    stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until("the operator's UI", ready, 120, work / "operator.log")
        rng = random.Random(1)
        per_page = 50
        pages = max(1, -(-args.apps // per_page))

        def timed(http: httpx.Client, path: str, into: list[float]) -> httpx.Response:
            t0 = time.perf_counter()
            resp = http.get(path)
            into.append(time.perf_counter() - t0)
            assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
            return resp

        def app_page() -> str:
            ns, body, _ = _app(rng.randrange(args.apps))
            return f"/apps/{ns}/{body['metadata']['name']}"

        with httpx.Client(base_url=base, timeout=60) as http:
            # app pages while the operator starts: its first pass over every app, then the
            # echo of its own writes (the busiest the reconcilers get); the rest is
            # measured once it is at rest
            settle = time.monotonic()
            busy: list[float] = []
            while not _reconciled(sb, args.apps):
                if time.monotonic() - settle > 1200:
                    raise SystemExit(f"the operator did not reconcile every app in 1200 s; "
                                     f"see {work / 'operator.log'}")
                for _ in range(10):
                    timed(http, app_page(), busy)
                    time.sleep(0.2)
            print(f"operator reconciled all {args.apps} apps "
                  f"{time.monotonic() - settle:.0f}s after its UI came up")
            # then kopf adds its finalizers and every app is seen again: at rest only when
            # the operator's CPU stays under a fifth of a core for two 5 s windows
            quiet = 0
            while quiet < 2:
                if time.monotonic() - settle > 1200:
                    raise SystemExit("the operator did not come to rest in 1200 s")
                cpu_before, window = _cpu_seconds(operator.pid), time.monotonic()
                for _ in range(10):
                    timed(http, app_page(), busy)
                    time.sleep(0.4)
                share = (_cpu_seconds(operator.pid) - cpu_before) / (time.monotonic() - window)
                quiet = quiet + 1 if share < 0.2 else 0
            print(f"operator at rest {time.monotonic() - settle:.0f}s after its UI came up")
            cpu_before, idle_from = _cpu_seconds(operator.pid), time.monotonic()
            time.sleep(20)  # nobody asks the UI anything: the fleet at rest (idle resync)
            at_rest = (_cpu_seconds(operator.pid) - cpu_before) / (time.monotonic() - idle_from)
            first = http.get("/")
            assert first.status_code == 200, first.text[:500]
            assert first.text.count('data-app="') == min(per_page, args.apps), "rows missing"
            assert f"{args.apps} apps" in first.text, "the inbox does not count every app"
            for path in ("/", f"/apps/bench-ui-00/app-{0:04d}"):
                http.get(path)  # warm templates and connections
            inbox: list[float] = []
            for _ in range(args.requests):
                timed(http, "/", inbox)
            paged: list[float] = []
            for _ in range(args.requests):
                timed(http, f"/?page={rng.randint(1, pages)}", paged)
            last = http.get(f"/?page={pages}")
            assert last.text.count('data-app="') == args.apps - (pages - 1) * per_page
            detail: list[float] = []
            for _ in range(args.requests):
                timed(http, app_page(), detail)
            api: list[float] = []
            for _ in range(args.requests // 2):
                timed(http, "/api/apps", api)
            assert http.get("/api/apps").json()["total"] == args.apps
            cold: list[float] = []
            for _ in range(args.cold):
                time.sleep(5.2)  # the list cache (5 s) has expired: a full impersonated list
                timed(http, "/", cold)
        print(f"apps: {args.apps}, page size of the inbox: {len(first.content) / 1024:.0f} KiB")
        print(f"inbox  GET /                 {_percentiles(inbox)}")
        print(f"inbox  GET /?page=K          {_percentiles(paged)}")
        if cold:
            print(f"inbox  GET / (cache expired) {_percentiles(cold)}")
        print(f"detail GET /apps/NS/NAME     {_percentiles(detail)}")
        if busy:
            print(f"detail while starting up     {_percentiles(busy)}")
        print(f"api    GET /api/apps         {_percentiles(api)}")
        print(f"operator RSS (kopf + reconcilers + UI, {args.apps} apps): "
              f"{_rss_mib(operator.pid):.0f} MiB")
        print(f"operator CPU at rest (20 s, no UI requests): {at_rest * 100:.0f}% of a core")
        print(json.dumps({"apps": args.apps, "inbox_p50_ms": statistics.median(inbox) * 1000,
                          "inbox_p95_ms": _p95(inbox) * 1000,
                          "cold_p95_ms": _p95(cold) * 1000 if cold else None,
                          "detail_p50_ms": statistics.median(detail) * 1000,
                          "detail_p95_ms": _p95(detail) * 1000,
                          "busy_detail_p95_ms": _p95(busy) * 1000 if busy else None,
                          "api_p95_ms": _p95(api) * 1000,
                          "page_kib": len(first.content) / 1024,
                          "rss_mib": _rss_mib(operator.pid),
                          "cpu_at_rest": round(at_rest, 3)}))
    finally:
        if operator is not None:
            operator.terminate()
            try:
                operator.wait(20)
            except subprocess.TimeoutExpired:
                operator.kill()
        if owned:
            down(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
