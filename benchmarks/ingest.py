"""How long mapping a Renovate report onto ManagedApps takes (target: under 2 s).

    .venv/bin/python benchmarks/ingest.py [--apps 1000] [--deps 5000] [--rounds 5]

Builds a report.json in Renovate 44's shape (flux HelmRelease charts and images,
OCIRepository tags, plain-manifest images, kubernetes-api apiVersion deps, a few
updates each) spread over ``--apps`` app directories, and ManagedApps whose status
points at those files. Then times, per round: parsing and validating the JSON, mapping
every dep to its app, and applying each app's versionPolicy (the whole pure path of an
ingest). Prints the figures; asserts nothing (they depend on the machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from typing import Any

from fluxup.api.managedapp import ManagedApp
from fluxup.logic.renovate_map import build_app_target, findings_for, map_report
from fluxup.logic.renovate_report import parse_report
from fluxup.logic.version_policy import ScanOutcome, decide_updates

REG = "127.0.0.1:5000"


def _updates(major: int) -> list[dict[str, Any]]:
    return [
        {"newValue": f"{major}.0.1", "newVersion": f"{major}.0.1", "updateType": "patch"},
        {"newValue": f"{major}.1.0", "newVersion": f"{major}.1.0", "updateType": "minor"},
        {"newValue": f"{major + 1}.0.0", "newVersion": f"{major + 1}.0.0", "updateType": "major"},
    ]


def build_report(apps: int, deps: int) -> str:
    flux: list[dict[str, Any]] = []
    kubernetes: list[dict[str, Any]] = []
    per_app = max(1, deps // apps)
    for i in range(apps):
        hr_deps = [{"depName": f"chart{i}", "packageName": f"chart{i}", "datasource": "helm",
                    "currentValue": "1.0.0", "currentVersion": "1.0.0",
                    "registryUrls": [f"http://{REG}/"], "updates": _updates(1)}]
        for j in range(max(0, per_app - 2)):
            image = f"{REG}/img{i}-{j}"
            hr_deps.append({"depName": image, "packageName": image, "datasource": "docker",
                            "currentValue": "2.0.0", "replaceString": "2.0.0",
                            "updates": _updates(2)})
        flux.append({"packageFile": f"flux/apps/app{i}/helmrelease.yaml", "deps": hr_deps})
        kubernetes.append({"packageFile": f"flux/apps/app{i}/deployment.yaml", "deps": [
            {"depName": "Deployment", "packageName": "Deployment",
             "datasource": "kubernetes-api", "currentValue": "apps/v1", "updates": []}]})
    report = {"problems": [], "repositories": {"local": {
        "problems": [], "branches": [], "packageFiles": {"flux": flux, "kubernetes": kubernetes},
    }}}
    return json.dumps(report)


def build_apps(apps: int) -> list[ManagedApp]:
    return [ManagedApp.from_dict({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
        "metadata": {"name": f"app{i}", "namespace": "apps"},
        "spec": {"helmReleaseRef": {"name": f"app{i}"},
                 "versionPolicy": {"chart": {"autoUpdate": "patch"},
                                   "images": [{"name": f"{REG}/img{i}-0",
                                               "valuesPath": "image.tag"}]}},
        "status": {"git": {"repositoryUrl": "http://git/fleet.git",
                           "file": f"flux/apps/app{i}/helmrelease.yaml"},
                   "helmRelease": {"apiVersion": "helm.toolkit.fluxcd.io/v2",
                                   "name": f"app{i}", "namespace": "apps",
                                   "chartName": f"chart{i}"},
                   "currentVersion": "1.0.0",
                   "currentImages": [{"valuesPath": "image.tag", "tag": "2.0.0"}]},
    }) for i in range(apps)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--deps", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    text = build_report(args.apps, args.deps)
    apps = build_apps(args.apps)
    now = dt.datetime.now(dt.UTC)
    figures: dict[str, list[float]] = {"parse": [], "map": [], "policy": [], "total": []}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        (repo,) = parse_report(text)
        t1 = time.perf_counter()
        targets = [t for t in (build_app_target(a) for a in apps) if t is not None]
        mapped = map_report(repo, targets)
        t2 = time.perf_counter()
        decided = 0
        for app, target in zip(apps, targets, strict=True):
            decision = decide_updates(app, findings_for(mapped, target), ScanOutcome(True), now)
            decided += decision.auto_target is not None
        t3 = time.perf_counter()
        for key, value in (("parse", t1 - t0), ("map", t2 - t1), ("policy", t3 - t2),
                           ("total", t3 - t0)):
            figures[key].append(value)
    print(f"report: {len(text) / 1e6:.1f} MB, {len(repo.deps)} deps, {args.apps} ManagedApps, "
          f"{decided} auto-update targets; {args.rounds} rounds")
    for key, values in figures.items():
        print(f"{key:>7}: median {statistics.median(values):.3f} s, max {max(values):.3f} s")


if __name__ == "__main__":
    main()
