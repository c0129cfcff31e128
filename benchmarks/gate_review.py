"""What one admission review costs in CPU: the pure gate, without HTTP or the apiserver.

    .venv/bin/python benchmarks/gate_review.py [--rounds N]

Times :func:`webhook.reviews.review` (parse the request's objects, decide, build the
patch or verdict) for typical line-1 requests, mutating and validating stage, and prints
microseconds per review (the median of 7 repeats of ``--rounds`` calls). It only uses the
``review()`` entry point, so it runs unchanged against another checkout of FluxUp
(``PYTHONPATH=<checkout>``) to compare two versions of the rules on one machine. The
times are the process's CPU time, so other load on the machine disturbs them less than
wall-clock time would. The end-to-end cost through kube-apiserver is
``benchmarks/gate_latency.py``. Asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import statistics
import time
from typing import Any

from fluxup.api import annotations as ann
from fluxup.api.admission import AdmissionRequest
from fluxup.logic.identity import Identity, build_approval
from webhook.reviews import GatePolicy, Stage, review

OPERATOR = "system:serviceaccount:fluxup-system:fluxup-operator"
FLUX = "system:serviceaccount:flux-system:kustomize-controller"
NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
SOURCE = "chart:app@HelmRepository/apps/charts"


def _release(version: str, **notes: str) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "app", "namespace": "apps",
                     "labels": {ann.MANAGED_APP_LABEL: "app",
                                "kustomize.toolkit.fluxcd.io/name": "apps"},
                     "annotations": {ann.IMAGE_PATHS: '["image.tag"]', **notes}},
        "spec": {"interval": "10m",
                 "chart": {"spec": {"chart": "app", "version": version,
                                    "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
                 "values": {"image": {"repository": "r/app", "tag": "1.0"},
                            "resources": {"limits": {"memory": "256Mi"}}}},
    }


def _deployed(obj: dict[str, Any], version: str) -> dict[str, Any]:
    stored = copy.deepcopy(obj)
    stored["status"] = {"history": [{"chartVersion": version, "status": "deployed"}],
                        "observedGeneration": 3}
    return stored


def _request(user: str, incoming: dict[str, Any], stored: dict[str, Any] | None,
             kind: str = "HelmRelease",
             group: str = "helm.toolkit.fluxcd.io") -> AdmissionRequest:
    request: AdmissionRequest = {
        "uid": "u", "kind": {"group": group, "version": "v2", "kind": kind},
        "operation": "UPDATE" if stored is not None else "CREATE",
        "userInfo": {"username": user}, "object": incoming, "oldObject": stored,
    }
    return request


def _scenarios() -> dict[str, AdmissionRequest]:
    new = Identity("1.1.0", (("image.tag", "1.0"),), SOURCE,
                   (("image.digest", None), ("image.registry", None),
                    ("image.repository", "r/app")))
    held = {ann.HELD: new.to_json(), ann.HELD_SINCE: "2026-03-01T11:00:00Z"}
    held_stored = _deployed(_release("1.1.0", **held), "1.0.0")
    held_stored["spec"]["suspend"] = True
    approved = copy.deepcopy(held_stored)
    approved["metadata"]["annotations"][ann.APPROVED] = build_approval(
        new, "UpgradeRequest/apps/app-1-1-0")
    approved["spec"]["suspend"] = False
    oci_stored = {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
                  "metadata": {"name": "app", "namespace": "apps",
                               "labels": {ann.MANAGED_APP_LABEL: "app"}},
                  "spec": {"url": "oci://r/charts/app", "ref": {"tag": "1.0.0"}},
                  "status": {"artifact": {"revision": "1.0.0@sha256:" + "a" * 64}}}
    oci_new = copy.deepcopy(oci_stored)
    oci_new["spec"]["ref"]["tag"] = "1.1.0"
    del oci_new["status"]
    return {
        "Flux re-apply, unchanged": _request(
            FLUX, _release("1.0.0"), _deployed(_release("1.0.0"), "1.0.0")),
        "Flux apply, new version": _request(
            FLUX, _release("1.1.0"), _deployed(_release("1.0.0"), "1.0.0")),
        "Flux re-apply while held": _request(FLUX, _release("1.1.0"), held_stored),
        "operator approves": _request(OPERATOR, approved, held_stored),
        "person un-suspends (denied)": _request(
            "alice", {**held_stored, "spec": {**held_stored["spec"], "suspend": False}},
            held_stored),
        "OCIRepository, new tag": _request(
            FLUX, oci_new, oci_stored, "OCIRepository", "source.toolkit.fluxcd.io"),
    }


def _per_review(request: AdmissionRequest, stage: Stage, policy: GatePolicy,
                rounds: int) -> float:
    # each call gets its own decoded copy, as the webhook decodes every body afresh
    body = json.dumps(request)
    requests = [json.loads(body) for _ in range(rounds)]
    started = time.process_time()
    for r in requests:
        review(r, stage, policy, NOW)
    return (time.process_time() - started) / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2000, help="reviews per repeat")
    args = parser.parse_args()
    policy = GatePolicy(OPERATOR)
    print("CPU time per review (µs), median of 7 repeats")
    print("| request                       | mutate (µs) | validate (µs) | decision       |")
    print("|-------------------------------|-------------|---------------|----------------|")
    totals = []
    for label, request in _scenarios().items():
        decision = review(json.loads(json.dumps(request)), "mutate", policy, NOW).decision
        times = {}
        for stage in ("mutate", "validate"):
            times[stage] = statistics.median(
                _per_review(request, stage, policy, args.rounds) for _ in range(7)) * 1e6
        totals.append(times["mutate"] + times["validate"])
        print(f"| {label:<29} | {times['mutate']:>11.1f} | {times['validate']:>13.1f} "
              f"| {decision:<14} |")
    print(f"mean over the requests, mutate + validate: {statistics.mean(totals):.1f} µs")


if __name__ == "__main__":
    main()
