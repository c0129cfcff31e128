"""RestoringVolumes driven pass by pass, with crashes between any two writes.

The Kubernetes side is the shared in-memory API server (:mod:`tests.memkube`), extended
to crash at a chosen call: a fake, because these tests inject a crash between every API
call and the status write, which a real apiserver cannot do on demand.
The e2e tests (tests/integration/test_rollback_e2e.py) run the same code against the
sandbox's real apiserver, CSI driver and snapshot controller.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import random
from typing import Any

import pytest

from fluxup.adapters.kube import Obj, R, Resource
from fluxup.api.managedapp import ManagedApp
from fluxup.api.rollbackrequest import (
    RestoredPVC,
    RollbackPhase,
    RollbackRequest,
    RollbackRequestStatus,
)
from fluxup.logic.rollback_plan import RESTORED_BY_ANNOTATION, RETAINED_BY_LABEL
from fluxup.reconcile.context import Context
from fluxup.reconcile.rollback_pass import RollbackPass
from fluxup.reconcile.rollback_steps import restore_volumes
from fluxup.settings import Settings
from tests.memkube import MemoryKube


class Crash(Exception):
    """The operator died in the middle of a pass."""


class CrashingKube(MemoryKube):
    """The shared in-memory API server, plus: a crash at a chosen call, the provisioner
    binding new claims, and the data-safety invariant checked at every claim deletion."""

    def __init__(self, status_of: Any) -> None:
        super().__init__()
        self.status_of = status_of
        self.deleted: list[str] = []
        self.crash_at: int | None = None

    def _enter(self, verb: str, res: Resource, name: str) -> None:
        super()._enter(verb, res, name)
        if self.crash_at is not None and len(self.calls) >= self.crash_at:
            self.crash_at = None
            raise Crash

    async def create(self, res: Resource, namespace: str | None, body: Obj) -> Obj:
        if res is R.PVC:  # the provisioner binds it to a new volume filled from the snapshot
            body = {**body, "spec": {**body["spec"], "volumeName": "pv-new"}}
            self.put(R.PV, {"metadata": {"name": "pv-new"},
                            "spec": {"persistentVolumeReclaimPolicy": "Delete"}})
        return await super().create(res, namespace, body)

    async def delete(self, res: Resource, namespace: str | None, name: str) -> None:
        obj = self.peek(res, namespace, name)
        await super().delete(res, namespace, name)
        if obj is None or res is not R.PVC:
            return
        # the invariant under test: the data is safe before its claim goes
        volume = self.peek(R.PV, None, obj["spec"]["volumeName"])
        entry = next(e for e in self.status_of().restored_pvcs if e.name == name)
        snap = self.peek(R.SNAPSHOT, namespace, entry.snapshot)
        assert volume is not None
        assert snap is not None
        assert snap["status"]["readyToUse"] is True
        assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert volume["metadata"]["labels"][RETAINED_BY_LABEL] == "undo"
        assert entry.retained_volume == volume["metadata"]["name"]
        self.deleted.append(name)


class _Events:
    async def record(self, *args: Any, **kwargs: Any) -> None:
        return


def _world(ready: bool = True) -> tuple[CrashingKube, list[RollbackRequestStatus]]:
    statuses = [RollbackRequestStatus(
        phase=RollbackPhase.RESTORING_VOLUMES,
        restored_pvcs=(RestoredPVC(name="data", namespace="shop", snapshot="up-data",
                                   restored=False),),
    )]
    kube = CrashingKube(lambda: statuses[-1])
    kube.put(R.PVC, {
        "metadata": {"name": "data", "namespace": "shop", "labels": {"tier": "db"},
                     "annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                 "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv-old"}})
    kube.put(R.PV, {"metadata": {"name": "pv-old"},
                    "spec": {"persistentVolumeReclaimPolicy": "Delete"}})
    kube.put(R.SNAPSHOT, {
        "metadata": {"name": "up-data", "namespace": "shop"},
        "spec": {"source": {"persistentVolumeClaimName": "data"}},
        "status": {"readyToUse": ready, "restoreSize": "2Gi"}})
    return kube, statuses


def _pass(kube: CrashingKube, status: RollbackRequestStatus) -> Any:
    ctx = Context(kube=kube, settings=Settings(), open_git=None,  # type: ignore[arg-type]
                  events=_Events(),  # type: ignore[arg-type]
                  now=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    rr = RollbackRequest.from_dict({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "RollbackRequest",
        "metadata": {"name": "undo", "namespace": "shop"},
        "spec": {"upgradeRequestRef": {"name": "up"}}})
    app = ManagedApp.from_dict({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {"helmReleaseRef": {"name": "shop"}}})
    return RollbackPass(ctx, {}, rr, status, app, None)


async def _drive(kube: CrashingKube, statuses: list[RollbackRequestStatus],
                 crashes: random.Random | None = None) -> RollbackRequestStatus:
    for _ in range(40):
        if crashes is not None and crashes.random() < 0.5:
            kube.crash_at = len(kube.calls) + crashes.randint(1, 4)
        try:
            outcome = await restore_volumes(_pass(kube, statuses[-1]))
        except Crash:
            continue  # crashed: the status of this pass was never written
        kube.crash_at = None
        statuses.append(dataclasses.replace(statuses[-1], **outcome.updates))
        if outcome.done or outcome.failure:
            return statuses[-1]
    raise AssertionError("RestoringVolumes never finished")


async def test_restore_recreates_the_claim_from_the_snapshot() -> None:
    kube, statuses = _world()
    status = await _drive(kube, statuses)
    (entry,) = status.restored_pvcs
    assert entry.restored
    assert entry.retained_volume == "pv-old"
    assert kube.deleted == ["data"]
    claim = kube.peek(R.PVC, "shop", "data")
    assert claim is not None
    assert claim["spec"]["dataSource"]["name"] == "up-data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"  # the restoreSize
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["metadata"]["labels"] == {"tier": "db"}
    assert claim["metadata"]["annotations"] == {RESTORED_BY_ANNOTATION: "shop/undo"}
    old = kube.peek(R.PV, None, "pv-old")
    assert old is not None
    assert old["spec"]["persistentVolumeReclaimPolicy"] == "Retain"


@pytest.mark.parametrize("seed", range(25))
async def test_restore_survives_crashes_anywhere(seed: int) -> None:
    kube, statuses = _world()
    status = await _drive(kube, statuses, random.Random(seed))
    assert status.restored_pvcs[0].restored
    assert kube.deleted == ["data"]  # deleted once, and only when safe (asserted in delete)
    assert (kube.peek(R.PVC, "shop", "data") or {})["spec"]["dataSource"]


async def test_a_snapshot_that_is_not_ready_touches_nothing() -> None:
    kube, statuses = _world(ready=False)
    before = copy.deepcopy(kube.objects)
    for _ in range(3):
        outcome = await restore_volumes(_pass(kube, statuses[-1]))
        assert not outcome.done
        assert "not ReadyToUse" in (outcome.message or "")
    assert kube.objects == before
    assert kube.deleted == []


async def test_an_unbound_claim_fails_without_changes() -> None:
    kube, statuses = _world()
    claim = kube.peek(R.PVC, "shop", "data")
    assert claim is not None
    del claim["spec"]["volumeName"]
    kube.put(R.PVC, claim)
    before = copy.deepcopy(kube.objects)
    outcome = await restore_volumes(_pass(kube, statuses[-1]))
    assert outcome.failure is not None
    assert "not bound" in outcome.failure[1]
    assert kube.objects == before
