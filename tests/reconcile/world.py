"""A small cluster in memory for unit tests of the reconcile layer.

:class:`World` puts one managed app into a :class:`~tests.memkube.MemoryKube`: its
ManagedApp (with the status discovery would have written), HelmRelease, HelmRepository,
PVC, StatefulSet and VolumeSnapshotClass, and plays the other controllers where a test
needs them (the gate holding a change, snapshot-controller, helm-controller). The chart
repository is a real HTTP server on localhost (aiohttp) serving ``index.yaml``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from fluxup.adapters.events import EventRecorder
from fluxup.adapters.git.base import GitBackend
from fluxup.adapters.kube import Obj, R
from fluxup.api import annotations as ann
from fluxup.api.managedapp import GitSource
from fluxup.errors import GitError
from fluxup.logic.identity import Identity
from fluxup.reconcile.context import Context
from fluxup.settings import Settings
from tests.localserver import serve_locally
from tests.memkube import MemoryKube

NS = "apps"
APP = "web"
T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)

INDEX = """\
apiVersion: v1
entries:
  web:
  - version: 1.0.0
  - version: 1.1.0
"""


async def chart_repo(index: str = INDEX) -> AsyncIterator[str]:
    """Serve ``index`` at ``http://127.0.0.1:<port>/index.yaml``; yields the base URL."""
    app = web.Application()

    async def handle(_: web.Request) -> web.Response:
        return web.Response(text=index, content_type="application/x-yaml")

    app.router.add_get("/index.yaml", handle)
    async with serve_locally(app) as base:
        yield base


async def no_git(source: GitSource, namespace: str) -> GitBackend:
    raise GitError(f"this test opens no Git repository ({source.repository_url})")


@dataclass
class Clock:
    now: dt.datetime = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@dataclass
class World:
    kube: MemoryKube = field(default_factory=MemoryKube)
    clock: Clock = field(default_factory=Clock)
    repo_url: str = "http://127.0.0.1:9/charts"
    ctx: Context = field(init=False)

    def __post_init__(self) -> None:
        self.ctx = Context(
            kube=self.kube,
            settings=Settings(work_dir=Path("/nonexistent")),
            open_git=no_git,
            events=EventRecorder(self.kube),
            now=self.clock,
        )

    # --- objects ----------------------------------------------------------------------

    def seed(self, app_spec: dict[str, Any] | None = None, version: str = "1.0.0") -> None:
        k = self.kube
        k.put(R.NAMESPACE, {"metadata": {"name": NS}})
        k.put(R.HELMREPOSITORY, {"metadata": {"name": "charts", "namespace": NS},
                                 "spec": {"url": self.repo_url}})
        k.put(R.HELMRELEASE, {
            "metadata": {"name": APP, "namespace": NS, "generation": 1,
                         "labels": {ann.MANAGED_APP_LABEL: APP}},
            "spec": {"chart": {"spec": {"chart": "web", "version": version, "sourceRef": {
                "kind": "HelmRepository", "name": "charts"}}}},
            "status": {"observedGeneration": 1,
                       "conditions": [{"type": "Ready", "status": "True",
                                       "reason": "UpgradeSucceeded", "message": "ok"}],
                       "history": [{"chartVersion": version, "status": "deployed",
                                    "version": 1, "name": APP}]},
        })
        k.put(R.PVC, {"metadata": {"name": "data-web-0", "namespace": NS},
                      "spec": {"storageClassName": "csi"}, "status": {"phase": "Bound"}})
        k.put(R.STATEFULSET, {"metadata": {"name": APP, "namespace": NS, "generation": 1},
                              "spec": {"replicas": 2},
                              "status": {"observedGeneration": 1, "readyReplicas": 2,
                                         "replicas": 2}})
        k.put(R.SNAPSHOTCLASS, {"metadata": {"name": "csi-snap"}, "driver": "csi"})
        k.put(R.MANAGEDAPP, {
            "metadata": {"name": APP, "namespace": NS, "generation": 1},
            "spec": {"helmReleaseRef": {"name": APP}, **(app_spec or {})},
            "status": {
                "currentVersion": version,
                "helmRelease": {"apiVersion": "helm.toolkit.fluxcd.io/v2", "name": APP,
                                "namespace": NS},
                "pvcs": [{"name": "data-web-0", "namespace": NS}],
                "workloads": [{"kind": "StatefulSet", "name": APP, "namespace": NS,
                               "replicas": 2}],
                "volumeSnapshotClassName": "csi-snap",
            },
        })

    def request(self, name: str, **spec: Any) -> Obj:
        body = {"metadata": {"name": name, "namespace": NS, "generation": 1},
                "spec": {"managedAppRef": {"name": APP}, **spec}}
        return self.kube.put(R.UPGRADEREQUEST, body)

    def get(self, res: Any, name: str, namespace: str | None = NS) -> Obj:
        obj = self.kube.peek(res, namespace, name)
        if obj is None:
            raise LookupError(f"{res.plural} {name} not found")
        return obj

    def phase(self, name: str) -> str | None:
        return (self.get(R.UPGRADEREQUEST, name).get("status") or {}).get("phase")

    # --- the other controllers ---------------------------------------------------------

    def gate_holds(self, version: str, res: Any = R.HELMRELEASE, name: str = APP) -> None:
        """What the admission gate does to a changed HelmRelease: suspend and annotate."""
        obj = self.get(res, name)
        obj["spec"]["suspend"] = True
        if res is R.HELMRELEASE:
            obj["spec"]["chart"]["spec"]["version"] = version
            obj["metadata"]["generation"] += 1
        obj["metadata"].setdefault("annotations", {})[ann.HELD] = Identity(
            chart=version).to_json()
        self.kube.put(res, obj)

    def snapshots_ready(self) -> None:
        for snap in self.kube.all(R.SNAPSHOT):
            snap["status"] = {"readyToUse": True, "restoreSize": "1Gi"}
            self.kube.put(R.SNAPSHOT, snap)

    def helm_releases(self, version: str, ready: bool = True, reason: str = "UpgradeSucceeded",
                      failures: int = 0) -> None:
        """helm-controller reconciles the HelmRelease (and takes up the reset token)."""
        hr = self.get(R.HELMRELEASE, APP)
        notes = hr["metadata"].get("annotations") or {}
        status = hr["status"]
        status["observedGeneration"] = hr["metadata"]["generation"]
        status["lastHandledResetAt"] = notes.get(ann.RESET_AT)
        status["upgradeFailures"] = failures
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                                 "reason": reason, "message": "helm says so",
                                 "observedGeneration": hr["metadata"]["generation"]}]
        if ready:
            status["history"] = [{"chartVersion": version, "status": "deployed", "version": 2,
                                  "name": APP}, *status["history"]]
        self.kube.put(R.HELMRELEASE, hr)
