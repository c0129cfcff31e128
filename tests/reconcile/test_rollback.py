"""A RollbackRequest driven pass by pass through every phase, on the in-memory cluster.

The test plays the other controllers (Flux applying Git, helm-controller, the
StatefulSet controller, the volume provisioner) and an in-memory Git branch; the e2e
tests (tests/integration/test_rollback_e2e.py) run the same flow on the real ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from fluxup.adapters.git.base import CommitResult, FileContent, GitBackend
from fluxup.adapters.kube import Obj, R
from fluxup.api.managedapp import GitSource
from fluxup.errors import GitConflictError, GitNotFoundError
from fluxup.logic.commitmsg import parse_trailers
from fluxup.reconcile.rollback import reconcile_rollback
from tests.reconcile.world import APP, NS, World

HR_FILE = "apps/web/release.yaml"
RELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: web
  namespace: apps
spec:
  chart:
    spec:
      chart: web
      version: "{version}"
"""


class MemoryGit:
    """One branch in memory: a list of (sha, message, files)."""

    def __init__(self, files: dict[str, str], conflict: bool = False) -> None:
        self.commits: list[tuple[str, str, dict[str, str]]] = [("c0", "init", dict(files))]
        self.conflict = conflict

    def _files(self) -> dict[str, str]:
        return dict(self.commits[-1][2])

    def _commit(self, message: str, files: dict[str, str]) -> CommitResult:
        sha = f"c{len(self.commits)}"
        self.commits.append((sha, message, files))
        return CommitResult(sha)

    async def read_file(self, path: str, ref: str | None = None) -> FileContent:
        return FileContent(path, self._files()[path], "blob", self.commits[-1][0])

    async def list_files(self, prefix: str = "") -> list[str]:
        return sorted(p for p in self._files() if p.startswith(prefix))

    async def commit_files(self, changes: Mapping[str, str], message: str,
                           expected_parent: str | None = None) -> CommitResult:
        return self._commit(message, {**self._files(), **changes})

    async def find_commit(self, trailer_key: str, trailer_value: str,
                          limit: int = 50) -> str | None:
        for sha, message, _ in reversed(self.commits):
            if parse_trailers(message).get(trailer_key) == trailer_value:
                return sha
        return None

    async def revert(self, commit_sha: str, message: str) -> CommitResult:
        index = next((i for i, c in enumerate(self.commits) if c[0] == commit_sha), None)
        if index is None:
            raise GitNotFoundError(f"{commit_sha} is not on the branch")
        if self.conflict:
            raise GitConflictError(f"reverting {commit_sha} conflicts")
        return self._commit(message, dict(self.commits[index - 1][2]))

    async def head(self) -> str:
        return self.commits[-1][0]

    async def diff_preview(self, changes: Mapping[str, str]) -> str:
        return ""

    async def aclose(self) -> None:
        return


def _setup(world: World, git: MemoryGit) -> None:
    world.seed(version="1.1.0")
    k = world.kube

    async def open_git(source: GitSource, namespace: str) -> GitBackend:
        return git

    world.ctx.open_git = open_git
    hr = world.get(R.HELMRELEASE, APP)
    hr["metadata"]["labels"].update({"kustomize.toolkit.fluxcd.io/name": "app-web",
                                     "kustomize.toolkit.fluxcd.io/namespace": "flux-system"})
    k.put(R.HELMRELEASE, hr)
    k.put(R.KUSTOMIZATION, {"metadata": {"name": "app-web", "namespace": "flux-system"},
                            "spec": {"sourceRef": {"kind": "GitRepository",
                                                   "name": "flux-system"}}})
    k.put(R.GITREPOSITORY, {"metadata": {"name": "flux-system", "namespace": "flux-system"},
                            "spec": {}})
    app = world.get(R.MANAGEDAPP, APP)
    app["status"]["git"] = {"repositoryUrl": "http://git/fleet", "branch": "main",
                            "path": "apps", "file": HR_FILE}
    k.put(R.MANAGEDAPP, app)
    pvc = world.get(R.PVC, "data-web-0")
    pvc["metadata"]["labels"] = {"app": "web"}
    pvc["spec"].update({"volumeName": "pv-old", "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}})
    k.put(R.PVC, pvc)
    k.put(R.PV, {"metadata": {"name": "pv-old"},
                 "spec": {"persistentVolumeReclaimPolicy": "Delete"}})
    k.put(R.SNAPSHOT, {
        "metadata": {"name": "up-data-web-0", "namespace": NS,
                     "labels": {"fluxup.dev/managed-app": APP,
                                "fluxup.dev/upgrade-request": "up"},
                     "annotations": {"fluxup.dev/source-pvc": "data-web-0"}},
        "spec": {"source": {"persistentVolumeClaimName": "data-web-0"}},
        "status": {"readyToUse": True, "restoreSize": "1Gi"}})
    k.put(R.UPGRADEREQUEST, {
        "metadata": {"name": "up", "namespace": NS},
        "spec": {"managedAppRef": {"name": APP}, "targetVersion": "1.1.0"},
        "status": {"phase": "Succeeded", "previousIdentity": {"version": "1.0.0"},
                   "targetIdentity": {"version": "1.1.0"}, "gitCommit": "c1",
                   "snapshots": [{"name": "up-data-web-0", "namespace": NS,
                                  "pvc": "data-web-0", "readyToUse": True}]}})


def _play_controllers(world: World) -> None:
    k = world.kube
    ks = world.get(R.KUSTOMIZATION, "app-web", "flux-system")
    hr = world.get(R.HELMRELEASE, APP)
    chart = hr["spec"]["chart"]["spec"]
    if not ks["spec"].get("suspend") and chart["version"] != "1.0.0" and \
            'version: "1.0.0"' in world.git_text():  # type: ignore[attr-defined]
        chart["version"] = "1.0.0"  # kustomize-controller applies the reverted Git
        hr["metadata"]["generation"] += 1
        k.put(R.HELMRELEASE, hr)
    hr = world.get(R.HELMRELEASE, APP)
    if not hr["spec"].get("suspend") and hr["spec"]["chart"]["spec"]["version"] == "1.0.0" \
            and hr["status"]["history"][0]["chartVersion"] != "1.0.0":
        world.helm_releases("1.0.0")
    for sts in k.all(R.STATEFULSET):
        n = sts["spec"]["replicas"]
        sts["status"] = {"observedGeneration": sts["metadata"]["generation"], "replicas": n,
                         "readyReplicas": n, "updatedReplicas": n}
        k.put(R.STATEFULSET, sts)
    for pvc in k.all(R.PVC):
        if not pvc["spec"].get("volumeName"):  # the provisioner restores the snapshot
            pvc["spec"]["volumeName"] = "pv-new"
            k.put(R.PVC, pvc)
            k.put(R.PV, {"metadata": {"name": "pv-new"},
                         "spec": {"persistentVolumeReclaimPolicy": "Delete"}})


async def _run(world: World, name: str, limit: int = 80) -> tuple[Obj, list[str]]:
    seen: list[str] = []
    for _ in range(limit):
        obj = world.get(R.ROLLBACKREQUEST, name)
        phase = (obj.get("status") or {}).get("phase") or "Pending"
        if not seen or seen[-1] != phase:
            seen.append(phase)
        if phase in ("Succeeded", "Failed"):
            return obj, seen
        await reconcile_rollback(world.ctx, obj)
        _play_controllers(world)
        world.clock.advance(seconds=1)
    raise AssertionError(f"no end after {limit} passes: {seen}")


def _rollback(world: World, name: str = "undo", **spec: Any) -> None:
    world.kube.put(R.ROLLBACKREQUEST, {
        "metadata": {"name": name, "namespace": NS, "generation": 1},
        "spec": spec or {"upgradeRequestRef": {"name": "up"}}})


@pytest.fixture
def git() -> MemoryGit:
    return MemoryGit({HR_FILE: RELEASE.format(version="1.0.0")})


@pytest.fixture
def world(git: MemoryGit) -> World:
    w = World()
    git.commits.append(("c1", "chore(deps): update web to 1.1.0\n\nUpgrade-Request: apps/up\n",
                        {HR_FILE: RELEASE.format(version="1.1.0")}))
    w.git_text = lambda: git.commits[-1][2][HR_FILE]  # type: ignore[attr-defined]
    _setup(w, git)
    return w


async def test_every_phase_runs_and_everything_is_put_back(world: World, git: MemoryGit) -> None:
    _rollback(world)
    rr, seen = await _run(world, "undo")
    assert rr["status"]["phase"] == "Succeeded", rr["status"]
    assert seen == ["Pending", "Validating", "Suspending", "StoppingApp", "RestoringVolumes",
                    "RevertingGit", "Resuming", "StartingApp", "HealthChecking", "Succeeded"]
    pvc = world.get(R.PVC, "data-web-0")
    assert pvc["spec"]["dataSource"]["name"] == "up-data-web-0"
    assert pvc["metadata"]["labels"] == {"app": "web"}
    old = world.get(R.PV, "pv-old", None)
    assert old["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert rr["status"]["restoredPVCs"] == [{"name": "data-web-0", "namespace": NS,
                                             "snapshot": "up-data-web-0", "restored": True,
                                             "retainedVolume": "pv-old"}]
    reverts = [m for _, m, _ in git.commits if "Rollback-Request: apps/undo" in m]
    assert len(reverts) == 1
    assert parse_trailers(reverts[0])["Reverts"] == "c1"
    assert rr["status"]["revertCommit"] == git.commits[-1][0]
    assert world.get(R.STATEFULSET, APP)["spec"]["replicas"] == 2
    assert "fluxup.dev/replicas-before-rollback" not in (
        world.get(R.STATEFULSET, APP)["metadata"].get("annotations") or {})
    hr = world.get(R.HELMRELEASE, APP)
    assert hr["spec"]["suspend"] is False
    assert "fluxup.dev/suspended-by-rollback" not in hr["metadata"]["annotations"]
    assert world.get(R.KUSTOMIZATION, "app-web", "flux-system")["spec"]["suspend"] is False
    assert (world.get(R.MANAGEDAPP, APP)["status"].get("activeRequest")) is None
    assert "fluxup.dev/rollback" not in (rr["metadata"].get("finalizers") or [])
    conditions = {c["type"]: c["status"] for c in rr["status"]["conditions"]}
    assert conditions == {"VolumesRestored": "True", "GitReverted": "True", "Healthy": "True",
                          "Ready": "True", "Reconciling": "False", "Stalled": "False"}
    reasons = {e["reason"] for e in world.kube.all(R.EVENT, NS)}
    assert {"Validating", "RestoringVolumes", "RevertingGit", "Succeeded"} <= reasons
    assert _git_reverted(rr)["reason"] == "Reverted"


def _git_reverted(rr: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in rr["status"]["conditions"] if c["type"] == "GitReverted")


async def test_a_conflicting_revert_commits_the_previous_version_forward(
    world: World, git: MemoryGit
) -> None:
    git.conflict = True
    _rollback(world)
    rr, _ = await _run(world, "undo")
    assert rr["status"]["phase"] == "Succeeded", rr["status"]
    message = git.commits[-1][1]
    assert "Rollback-Request: apps/undo" in message
    assert "Reverts" not in parse_trailers(message)
    assert 'version: "1.0.0"' in git.commits[-1][2][HR_FILE]
    reverted = _git_reverted(rr)  # the user can tell a forward commit from a revert
    assert (reverted["status"], reverted["reason"]) == ("True", "RevertConflict")
    assert "cannot revert c1" in reverted["message"]
    assert "committed 1.0.0 forward" in reverted["message"]


async def test_an_upgrade_pushed_by_hand_is_rolled_back_by_a_forward_commit(
    world: World, git: MemoryGit
) -> None:
    git.commits[1] = ("c1", "bump web by hand\n", git.commits[1][2])  # no FluxUp trailer
    up = world.get(R.UPGRADEREQUEST, "up")
    del up["status"]["gitCommit"]  # an origin: git request never committed anything
    world.kube.put(R.UPGRADEREQUEST, up)
    _rollback(world)
    rr, _ = await _run(world, "undo")
    assert rr["status"]["phase"] == "Succeeded", rr["status"]
    assert 'version: "1.0.0"' in git.commits[-1][2][HR_FILE]
    assert [c[0] for c in git.commits] == ["c0", "c1", "c2"]  # one commit, forward
    reverted = _git_reverted(rr)
    assert (reverted["status"], reverted["reason"]) == ("True", "CommittedForward")


async def test_a_snapshot_that_is_not_ready_is_refused_with_nothing_changed(
    world: World,
) -> None:
    snap = world.get(R.SNAPSHOT, "up-data-web-0")
    snap["status"] = {"readyToUse": False}
    world.kube.put(R.SNAPSHOT, snap)
    before = {k: v for k, v in world.kube.objects.items() if k[0] is not R.ROLLBACKREQUEST}
    _rollback(world)
    rr, seen = await _run(world, "undo")
    assert seen == ["Pending", "Validating", "Failed"]
    assert "up-data-web-0 is not ReadyToUse" in rr["status"]["message"]
    assert "nothing was changed" in rr["status"]["message"]
    after = {k: v for k, v in world.kube.objects.items()
             if k[0] not in (R.ROLLBACKREQUEST, R.EVENT)}
    # the lock was taken and given back; nothing else differs
    for key, obj in before.items():
        if key[0] is R.MANAGEDAPP:
            assert after[key]["status"].get("activeRequest") is None
            continue
        assert after[key].get("spec") == obj.get("spec"), key
        for part in ("labels", "annotations"):
            assert after[key]["metadata"].get(part) == obj["metadata"].get(part), key


async def test_a_busy_app_refuses_the_rollback(world: World) -> None:
    world.request("other", targetVersion="1.2.0")
    other = world.get(R.UPGRADEREQUEST, "other")
    other["status"] = {"phase": "Snapshotting"}
    world.kube.put(R.UPGRADEREQUEST, other)
    app = world.get(R.MANAGEDAPP, APP)
    app["status"]["activeRequest"] = {"kind": "UpgradeRequest", "name": "other"}
    world.kube.put(R.MANAGEDAPP, app)
    _rollback(world)
    rr, seen = await _run(world, "undo")
    assert seen == ["Pending", "Failed"]
    assert "busy: UpgradeRequest other is Snapshotting" in rr["status"]["message"]
    assert world.get(R.HELMRELEASE, APP)["spec"].get("suspend") is None


async def test_deleting_a_rollback_in_flight_gives_flux_and_replicas_back(world: World) -> None:
    _rollback(world)
    for _ in range(20):
        obj = world.get(R.ROLLBACKREQUEST, "undo")
        if (obj.get("status") or {}).get("phase") == "RestoringVolumes":
            break
        await reconcile_rollback(world.ctx, obj)
        _play_controllers(world)
    assert world.get(R.STATEFULSET, APP)["spec"]["replicas"] == 0
    await world.kube.delete(R.ROLLBACKREQUEST, NS, "undo")
    await reconcile_rollback(world.ctx, world.get(R.ROLLBACKREQUEST, "undo"))
    assert world.kube.peek(R.ROLLBACKREQUEST, NS, "undo") is None
    assert world.get(R.STATEFULSET, APP)["spec"]["replicas"] == 2
    assert world.get(R.HELMRELEASE, APP)["spec"]["suspend"] is False
    assert world.get(R.KUSTOMIZATION, "app-web", "flux-system")["spec"]["suspend"] is False
    assert world.get(R.MANAGEDAPP, APP)["status"].get("activeRequest") is None


async def test_statefulset_claims_survive_scale_down_and_the_policy_comes_back(
    world: World,
) -> None:
    sts = world.get(R.STATEFULSET, APP)
    policy = {"whenScaled": "Delete", "whenDeleted": "Retain"}
    sts["spec"]["persistentVolumeClaimRetentionPolicy"] = policy
    world.kube.put(R.STATEFULSET, sts)
    _rollback(world)
    scaled_with: list[Any] = []
    for _ in range(80):
        obj = world.get(R.ROLLBACKREQUEST, "undo")
        phase = (obj.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            break
        await reconcile_rollback(world.ctx, obj)
        spec = world.get(R.STATEFULSET, APP)["spec"]
        if spec["replicas"] == 0:
            scaled_with.append(spec["persistentVolumeClaimRetentionPolicy"]["whenScaled"])
        _play_controllers(world)
    assert (obj.get("status") or {}).get("phase") == "Succeeded", obj.get("status")
    assert scaled_with
    assert set(scaled_with) == {"Retain"}  # never scaled down while it would delete claims
    after = world.get(R.STATEFULSET, APP)
    assert after["spec"]["persistentVolumeClaimRetentionPolicy"] == policy
    assert "fluxup.dev/pvc-retention-before-rollback" not in after["metadata"]["annotations"]


async def test_a_release_suspended_by_a_person_while_resuming_says_what_to_do(
    world: World,
) -> None:
    """Someone suspends the HelmRelease the rollback has just released: helm-controller
    will never act, so the request says exactly that (and how to go on) instead of the
    generic wait, and finishes once the person resumes it."""
    _rollback(world)
    for _ in range(60):
        await reconcile_rollback(world.ctx, world.get(R.ROLLBACKREQUEST, "undo"))
        rr, hr = world.get(R.ROLLBACKREQUEST, "undo"), world.get(R.HELMRELEASE, APP)
        released = "fluxup.dev/suspended-by-rollback" not in (
            hr["metadata"].get("annotations") or {})
        if rr["status"]["phase"] == "Resuming" and released:
            break  # before helm-controller (played below) acts on it
        _play_controllers(world)
        world.clock.advance(seconds=1)
    else:
        raise AssertionError("the rollback never released the HelmRelease")
    hr["spec"]["suspend"] = True  # a person: no rollback annotation, no gate hold
    world.kube.put(R.HELMRELEASE, hr)
    await reconcile_rollback(world.ctx, world.get(R.ROLLBACKREQUEST, "undo"))
    rr = world.get(R.ROLLBACKREQUEST, "undo")
    assert rr["status"]["phase"] == "Resuming", rr["status"]
    assert "suspended by someone else" in rr["status"]["message"], rr["status"]
    assert "flux resume helmrelease" in rr["status"]["message"]

    hr = world.get(R.HELMRELEASE, APP)
    hr["spec"]["suspend"] = False  # they resume it
    world.kube.put(R.HELMRELEASE, hr)
    rr, _ = await _run(world, "undo")
    assert rr["status"]["phase"] == "Succeeded", rr["status"]
