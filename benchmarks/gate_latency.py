"""What the admission gate costs: HelmRelease updates with and without it, and its throughput.

    .venv/bin/python benchmarks/gate_latency.py [--kubeconfig SANDBOX/kubeconfig] [--requests N]

Against a sandbox API server (started in a temporary directory unless ``--kubeconfig``
names a running sandbox's), it measures managed HelmRelease updates (a server-side
apply as ``kustomize-controller``, as Flux does) at concurrency 1, 4 and 16, first with no
webhook registered, then with FluxUp's webhook configurations pointing at a local
webhook process. Two kinds of update: one that changes the spec (an input of the gate, so
both webhooks are called) and one that changes only another tool's annotation (like
Flux's unchanged re-apply each interval, skipped by the configurations' matchConditions);
then the webhook's own throughput (reviews/s) on one process over HTTPS.
Then line 2's cost: CREATE of a Helm release record (the Secret Helm writes once per
install/upgrade/rollback) in a namespace line 2 does not select, and in one it does, for
a release no ManagedApp protects and for a managed release at its deployed identity (the
webhook lists ManagedApps by label and decodes the record). Line 2's webhook reads
ManagedApps with the sandbox admin's kubeconfig here (the shipped RBAC grants
``get/list managedapps`` only). Prints tables; asserts nothing (numbers depend on the
machine).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import json
import secrets
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from fluxup.api import annotations as ann
from fluxup.logic.gate_values import parse_value_path
from fluxup.logic.release_record import (
    ReleaseIdentity,
    build_gate_annotation,
    build_release_key,
)
from fluxup.sandbox import controlplane
from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.guard import check_sandbox_kubeconfig
from fluxup.sandbox.processes import free_port
from webhook.local import LocalWebhook, build_local_configurations

REPO = Path(__file__).resolve().parent.parent
OPERATOR = "system:serviceaccount:fluxup-system:fluxup-operator"
CONCURRENCIES = (1, 4, 16)


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


UPDATES = ("spec", "annotation")  # what each update changes (see the module docstring)


def _release(namespace: str, name: str, tick: int, where: str = "spec") -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {ann.MANAGED_APP_LABEL: name},
                     "annotations": {"bench.example.com/tick":
                                     str(tick if where == "annotation" else 0)}},
        "spec": {"interval": "10m",
                 "chart": {"spec": {"chart": "app", "version": "1.0.0",
                                    "sourceRef": {"kind": "HelmRepository", "name": "c"}}},
                 "values": {"tick": tick if where == "spec" else 0}},
    }


async def _timed(worker: Callable[[int], Awaitable[None]], concurrency: int,
                 total: int) -> list[float]:
    latencies: list[float] = []
    per_worker = max(1, total // concurrency)

    async def run(w: int) -> None:
        for i in range(per_worker):
            started = time.perf_counter()
            await worker(w * per_worker + i)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(run(w) for w in range(concurrency)))
    return latencies


async def _apply_latencies(sb: Sandbox, namespace: str, total: int, where: str
                          ) -> dict[int, list[float]]:
    results: dict[int, list[float]] = {}
    connector = aiohttp.TCPConnector(ssl=sb.ssl_context(), limit=32)
    base = f"{sb.server}/apis/helm.toolkit.fluxcd.io/v2/namespaces/{namespace}/helmreleases"
    async with aiohttp.ClientSession(connector=connector, raise_for_status=True) as client:
        for concurrency in CONCURRENCIES:
            async def apply(i: int, concurrency: int = concurrency) -> None:
                name = f"app-{i % concurrency}"
                async with client.patch(
                    f"{base}/{name}",
                    params={"fieldManager": "kustomize-controller", "force": "true"},
                    headers={"Content-Type": "application/apply-patch+yaml"},
                    data=json.dumps(_release(namespace, name, i, where)),
                ) as resp:
                    await resp.read()

            await _timed(apply, concurrency, concurrency * 2)  # warm up
            results[concurrency] = await _timed(apply, concurrency, total)
    return results


def _review(i: int) -> bytes:
    old = _release("bench", "app", 0)
    old["status"] = {"history": [{"chartVersion": "1.0.0"}]}
    new = _release("bench", "app", i)
    new["spec"]["chart"]["spec"]["version"] = "1.0.1" if i % 2 else "1.0.0"
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "request": {"uid": f"u{i}", "operation": "UPDATE",
                          "kind": {"group": "helm.toolkit.fluxcd.io", "version": "v2",
                                   "kind": "HelmRelease"},
                          "userInfo": {"username": "kustomize-controller"},
                          "object": new, "oldObject": old}}
    return json.dumps(review).encode()


async def _throughput(webhook: LocalWebhook, total: int, concurrency: int = 16) -> float:
    context = ssl.create_default_context(cafile=str(webhook.files.ca_bundle))
    bodies = [_review(i) for i in range(64)]
    connector = aiohttp.TCPConnector(ssl=context, limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, raise_for_status=True) as client:
        async def post(i: int) -> None:
            async with client.post(webhook.url + "/mutate", data=bodies[i % len(bodies)]) as r:
                base64.b64decode((await r.json())["response"].get("patch", ""))

        await _timed(post, concurrency, concurrency * 4)
        started = time.perf_counter()
        done = await _timed(post, concurrency, total)
        return len(done) / (time.perf_counter() - started)


def _helm_record(namespace: str, release: str, revision: int) -> dict[str, Any]:
    """A Helm release-record Secret as helm-controller writes it (gzip JSON, base64)."""
    doc = {"name": release, "namespace": namespace, "version": revision,
           "chart": {"metadata": {"name": "app", "version": "1.0.0"},
                     "values": {"image": {"repository": "r/app", "tag": "1.0"}}},
           "config": {}, "info": {"status": "pending-upgrade"},
           "manifest": "---\n# " + "x" * 20000}  # records carry the rendered manifests
    # Helm stores base64(gzip(JSON)) as the Secret's value; the Secret's data is base64 again
    helm = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(doc).encode())))
    return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": f"sh.helm.release.v1.{release}.v{revision}",
                         "labels": {"owner": "helm", "name": release, "status": "pending-upgrade",
                                    "version": str(revision)}},
            "data": {"release": helm.decode()}}


async def _record_latencies(sb: Sandbox, namespace: str, release: str,
                            total: int, first: int) -> list[float]:
    """CREATE ``total`` records (after 4 to warm up) of revisions ``first`` and up: every
    record needs a revision of its own, or the apiserver answers 409 Conflict."""
    connector = aiohttp.TCPConnector(ssl=sb.ssl_context(), limit=4)
    url = f"{sb.server}/api/v1/namespaces/{namespace}/secrets"
    async with aiohttp.ClientSession(connector=connector) as client:
        async def create(revision: int) -> None:
            body = _helm_record(namespace, release, revision)
            async with client.post(url, data=json.dumps(body),
                                   headers={"Content-Type": "application/json"}) as resp:
                answer = await resp.text()
                if resp.status >= 300:  # the apiserver's (or the webhook's) reason
                    raise SystemExit(f"Helm record CREATE {resp.status}: {answer[:400]}")

        await _timed(lambda i: create(first + i), 1, 4)
        return await _timed(lambda i: create(first + 4 + i), 1, total)


def _managed_app_with_gate(sb: Sandbox, namespace: str, release: str) -> None:
    deployed = ReleaseIdentity("app", "1.0.0", (
        ("image.digest", None), ("image.registry", None), ("image.repository", "r/app"),
        ("image.tag", "1.0")))
    body = {"apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
            "metadata": {"name": release, "namespace": namespace,
                         "labels": {ann.RELEASE_KEY_LABEL: build_release_key(namespace, release)},
                         "annotations": {ann.RELEASE_GATE: build_gate_annotation(
                             namespace, release, (parse_value_path("image.tag"),), (deployed,))}},
            "spec": {"helmReleaseRef": {"name": release}}}
    sb.kubectl("apply", "-f", "-", input=json.dumps(body))


def _register(sb: Sandbox, webhook: LocalWebhook, token: str) -> list[dict[str, Any]]:
    manifest = REPO / "manifests/webhook/core/webhookconfigurations.yaml"
    configs = build_local_configurations(
        list(yaml.safe_load_all(manifest.read_text())), webhook.url,
        webhook.files.ca_bundle.read_bytes(), name=f"fluxup-gate-bench-{token}",
        namespace_selector={"matchLabels": {"fluxup.dev/gate-bench": token}})
    sb.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                     "items": configs}))
    return configs


def _helmrelease_reviews(webhook: LocalWebhook) -> int:
    return sum(n for (_, kind, _), n in webhook.request_counts().items() if kind == "HelmRelease")


def _row(label: str, concurrency: int, samples: list[float]) -> str:
    p50, p99 = _percentile(samples, 0.5) * 1000, _percentile(samples, 0.99) * 1000
    return f"| {label:<28} | {concurrency:>11} | {len(samples):>8} | {p50:>8.1f} | {p99:>8.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", type=Path, help="a running sandbox's kubeconfig")
    parser.add_argument("--requests", type=int, default=192, help="updates per measurement")
    parser.add_argument("--reviews", type=int, default=4000, help="reviews for throughput")
    parser.add_argument("--records", type=int, default=60, help="Helm records per measurement")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fluxup-bench-"))
    owned = args.kubeconfig is None
    if owned:
        sb = controlplane.up(work / "sandbox", out=sys.stderr)
    else:
        check_sandbox_kubeconfig(args.kubeconfig)
        sb = controlplane.load(args.kubeconfig.resolve().parent)
    token = secrets.token_hex(3)
    namespace = f"bench-{token}"
    webhook = LocalWebhook(work / "certs", free_port(), OPERATOR, work / "webhook.log",
                           kubeconfig=sb.kubeconfig)
    records_ns = f"bench-rec-{token}"
    configs: list[dict[str, Any]] = []
    try:
        sb.kubectl("create", "namespace", namespace)
        sb.kubectl("label", "namespace", namespace, f"fluxup.dev/gate-bench={token}")
        for i in range(max(CONCURRENCIES)):
            sb.kubectl("apply", "--server-side", "--field-manager=kustomize-controller", "-f",
                       "-", input=json.dumps(_release(namespace, f"app-{i}", 0)))
        sb.kubectl("apply", "--server-side", "--field-manager=fluxup-bench",
                   *[f"--filename={p}" for p in sorted((REPO / "crds").glob("fluxup.dev_*"))])
        sb.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        sb.kubectl("create", "namespace", records_ns)
        _managed_app_with_gate(sb, records_ns, "managed")
        records: dict[str, list[float]] = {}
        records["not selected (no webhook call)"] = asyncio.run(
            _record_latencies(sb, records_ns, "managed", args.records, 1000))
        without = {w: asyncio.run(_apply_latencies(sb, namespace, args.requests, w))
                   for w in UPDATES}
        webhook.start()
        configs = _register(sb, webhook, token)
        sb.kubectl("label", "namespace", records_ns, f"fluxup.dev/gate-bench={token}",
                   "fluxup.dev/release-records=gated")
        with_gate, calls = {}, {}
        for where in UPDATES:  # and how many reviews the webhook served for them
            # first bring every object to this kind of update's state (the other kind
            # left a different spec or annotation), then count
            asyncio.run(_apply_latencies(sb, namespace, max(CONCURRENCIES), where))
            before = _helmrelease_reviews(webhook)
            with_gate[where] = asyncio.run(_apply_latencies(sb, namespace, args.requests, where))
            calls[where] = _helmrelease_reviews(webhook) - before
        records["line 2, unmanaged release"] = asyncio.run(
            _record_latencies(sb, records_ns, "other", args.records, 1000))
        records["line 2, managed, deployed"] = asyncio.run(
            _record_latencies(sb, records_ns, "managed", args.records, 1000 + args.records + 4))
        rate = asyncio.run(_throughput(webhook, args.reviews))
    finally:
        if configs:
            sb.kubectl("delete", "-f", "-", "--ignore-not-found", check=False,
                       input=json.dumps({"apiVersion": "v1", "kind": "List", "items": configs}))
        webhook.stop()
        sb.kubectl("delete", "namespace", namespace, records_ns, "--wait=false", check=False)
        if owned:
            controlplane.down(sb.dir, out=sys.stderr)

    labels = {"spec": ("spec changed", "FluxUp: both webhooks"),
              "annotation": ("other annotation changed", "FluxUp: matchConditions skip")}
    print("HelmRelease server-side apply through kube-apiserver (managed release)")
    print("| update                   | webhook                      | concurrency | requests "
          "| p50 (ms) | p99 (ms) |")
    print("|--------------------------|------------------------------|-------------|----------"
          "|----------|----------|")
    for where in UPDATES:
        what, gate = labels[where]
        for concurrency in CONCURRENCIES:
            print(f"| {what:<24} " + _row("none registered", concurrency,
                                            without[where][concurrency]))
            print(f"| {what:<24} " + _row(gate, concurrency, with_gate[where][concurrency]))
    print()
    for where in UPDATES:
        extra = {c: statistics.median(with_gate[where][c]) - statistics.median(without[where][c])
                 for c in CONCURRENCIES}
        print(f"median added by the gate, {labels[where][0]}: " + ", ".join(
            f"c={c}: {ms * 1000:+.1f} ms" for c, ms in extra.items()))
        print(f"  webhook reviews served for these updates: {calls[where]}")
    print(f"webhook throughput, one process, HTTPS, 16 connections: {rate:,.0f} reviews/s")
    print()
    print("Helm release record CREATE (one per Helm install/upgrade/rollback), concurrency 1")
    print("| line 2                       | concurrency | requests | p50 (ms) | p99 (ms) |")
    print("|------------------------------|-------------|----------|----------|----------|")
    for label, samples in records.items():
        print(_row(label, 1, samples))
    base = statistics.median(records["not selected (no webhook call)"])
    print("median added by line 2 per Helm revision: " + ", ".join(
        f"{label}: {(statistics.median(s) - base) * 1000:+.1f} ms"
        for label, s in records.items() if not label.startswith("not selected")))


if __name__ == "__main__":
    main()
