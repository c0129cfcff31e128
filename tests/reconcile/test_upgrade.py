"""The UpgradeRequest reconciler, pass by pass, against the in-memory API server: the
route a request takes, what each phase action changes, and the ways a request ends."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fluxup.adapters.git import GitBackend, GitCliBackend
from fluxup.adapters.kube import R
from fluxup.api import annotations as ann
from fluxup.api.managedapp import GitSource
from fluxup.errors import KubeError
from fluxup.logic.identity import approval_of, parse_identity
from fluxup.reconcile.upgrade import FINALIZER, reconcile_upgrade
from tests.adapters.test_git_cli import Remote, init_bare
from tests.reconcile.world import APP, NS, World, chart_repo

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
      version: "1.0.0"
"""


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async for url in chart_repo():
        w = World(repo_url=url)
        w.seed()
        yield w


async def run(world: World, name: str, passes: int = 1) -> list[str | None]:
    """Run ``passes`` passes; the phases seen after each."""
    seen = []
    for _ in range(passes):
        await reconcile_upgrade(world.ctx, world.get(R.UPGRADEREQUEST, name))
        seen.append(world.phase(name))
    return seen


async def test_a_git_hold_is_snapshotted_released_and_checked(world: World) -> None:
    world.gate_holds("1.1.0")
    world.request("hold", targetVersion="1.1.0", origin="git")
    route = await run(world, "hold", 3)
    assert route == ["Preflight", "AwaitingApply", "Snapshotting"]
    ur = world.get(R.UPGRADEREQUEST, "hold")
    assert FINALIZER in ur["metadata"]["finalizers"]
    assert world.get(R.MANAGEDAPP, APP)["status"]["activeRequest"] == {
        "kind": "UpgradeRequest", "name": "hold"}
    checks = {c["name"]: c["result"] for c in ur["status"]["preflight"]}
    assert checks["target-version-exists"] == "Passed"

    assert await run(world, "hold") == ["Snapshotting"]  # the snapshot is not ready yet
    snaps = world.kube.all(R.SNAPSHOT, NS)
    assert [s["spec"]["source"]["persistentVolumeClaimName"] for s in snaps] == ["data-web-0"]
    assert world.get(R.HELMRELEASE, APP)["spec"]["suspend"] is True  # still held

    world.snapshots_ready()
    assert await run(world, "hold") == ["Releasing"]
    assert await run(world, "hold") == ["Upgrading"]
    hr = world.get(R.HELMRELEASE, APP)
    assert hr["spec"]["suspend"] is False
    approval = approval_of(hr)
    assert approval is not None
    assert approval.identity == parse_identity(hr["metadata"]["annotations"][ann.HELD])
    assert approval.request == f"UpgradeRequest/{NS}/hold"  # bound to this request
    assert await run(world, "hold") == ["Upgrading"]  # helm-controller has not acted yet

    world.helm_releases("1.1.0")
    assert await run(world, "hold", 2) == ["HealthChecking", "Succeeded"]
    # the approval ends with its request; what runs is recorded as released instead
    notes = world.get(R.HELMRELEASE, APP)["metadata"]["annotations"]
    assert ann.APPROVED not in notes
    assert parse_identity(notes[ann.RELEASED]).chart == "1.1.0"
    ur = world.get(R.UPGRADEREQUEST, "hold")
    assert FINALIZER not in (ur["metadata"].get("finalizers") or [])
    ready = next(c for c in ur["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Succeeded")
    app = world.get(R.MANAGEDAPP, APP)["status"]
    assert "activeRequest" not in app
    assert (app["lastUpgrade"]["phase"], app["lastUpgrade"]["toVersion"]) == ("Succeeded", "1.1.0")


async def test_a_hold_that_comes_back_after_release_is_released_again(world: World) -> None:
    """Seen on the sandbox: a write landed after Releasing but before helm-controller's
    status named the new version, so line 1 held the HelmRelease again; the request
    must not wait forever for a suspended helm-controller."""
    world.gate_holds("1.1.0")
    world.request("late", targetVersion="1.1.0", origin="git")
    await run(world, "late", 4)
    world.snapshots_ready()
    assert await run(world, "late", 2) == ["Releasing", "Upgrading"]
    world.gate_holds("1.1.0")  # held again by line 1
    assert await run(world, "late") == ["Upgrading"]
    hr = world.get(R.HELMRELEASE, APP)
    assert hr["spec"]["suspend"] is False
    approval = approval_of(hr)
    assert approval is not None
    assert approval.request == f"UpgradeRequest/{NS}/late"
    world.helm_releases("1.1.0")
    assert await run(world, "late", 2) == ["HealthChecking", "Succeeded"]


async def test_release_approves_even_when_nothing_is_held_right_now(world: World) -> None:
    """A line-2 hold: the HelmRelease is not suspended, yet line 1 needs the approval
    before helm-controller's status catches up with the new version."""
    world.gate_holds("1.1.0")
    world.request("rec", targetVersion="1.1.0", origin="git")
    await run(world, "rec", 4)
    hr = world.get(R.HELMRELEASE, APP)
    hr["spec"]["suspend"] = False
    del hr["metadata"]["annotations"][ann.HELD]
    world.kube.put(R.HELMRELEASE, hr)
    world.snapshots_ready()
    assert await run(world, "rec") == ["Releasing"]
    await run(world, "rec")
    approval = approval_of(world.get(R.HELMRELEASE, APP))
    assert approval is not None
    assert approval.identity.chart == "1.1.0"


async def test_a_second_request_queues_behind_the_first(world: World) -> None:
    world.gate_holds("1.1.0")
    world.request("first", targetVersion="1.1.0", origin="git")
    world.request("second", targetVersion="1.1.0", origin="git")
    await run(world, "first")
    assert await run(world, "second", 2) == ["Queued", "Queued"]
    assert "waiting for UpgradeRequest first" in world.get(
        R.UPGRADEREQUEST, "second")["status"]["message"]


async def test_a_suspended_app_queues_new_requests(world: World) -> None:
    app = world.get(R.MANAGEDAPP, APP)
    app["spec"]["suspend"] = True
    world.kube.put(R.MANAGEDAPP, app)
    world.request("wait", targetVersion="1.1.0", origin="git")
    assert await run(world, "wait", 2) == ["Queued", "Queued"]
    assert "is suspended (spec.suspend)" in world.get(R.UPGRADEREQUEST, "wait")["status"][
        "message"]
    app = world.get(R.MANAGEDAPP, APP)
    app["spec"]["suspend"] = False
    world.kube.put(R.MANAGEDAPP, app)
    assert await run(world, "wait", 2) == ["Pending", "Preflight"]


async def test_a_missing_target_version_fails_preflight(world: World) -> None:
    world.request("bad", targetVersion="9.9.9", origin="git")
    assert await run(world, "bad", 2) == ["Preflight", "Failed"]
    ur = world.get(R.UPGRADEREQUEST, "bad")
    assert "chart web 9.9.9 not found" in ur["status"]["message"]
    assert "activeRequest" not in world.get(R.MANAGEDAPP, APP)["status"]


async def test_a_passed_deadline_fails_and_frees_the_lock(world: World) -> None:
    world.gate_holds("1.1.0")
    world.request("slow", targetVersion="1.1.0", origin="git")
    await run(world, "slow", 4)
    assert world.phase("slow") == "Snapshotting"
    world.clock.advance(minutes=11)  # the default snapshot timeout is 10m
    assert await run(world, "slow") == ["Failed"]
    message = _failed_unreleased(world, "slow", "DeadlineExceeded")
    assert "Snapshotting did not finish before its deadline" in message
    assert "last seen: 0/1 snapshots ReadyToUse" in message


def _failed_unreleased(world: World, name: str, reason: str) -> str:
    """Request ``name`` failed for ``reason``, freed the app's lock and released nothing;
    its message."""
    ur = world.get(R.UPGRADEREQUEST, name)
    ready = next(c for c in ur["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == reason
    assert "activeRequest" not in world.get(R.MANAGEDAPP, APP)["status"]
    assert world.get(R.HELMRELEASE, APP)["spec"]["suspend"] is True  # never released
    return str(ur["status"]["message"])


def _snapshot_error(world: World, message: str | None) -> None:
    """The CSI snapshotter reports (or, with None, clears) an error on every snapshot."""
    for snap in world.kube.all(R.SNAPSHOT):
        snap["status"] = {"readyToUse": False} | (
            {"error": {"message": message}} if message else {})
        world.kube.put(R.SNAPSHOT, snap)


async def test_a_snapshot_error_waits_while_the_snapshotter_retries(world: World) -> None:
    world.gate_holds("1.1.0")
    world.request("busy", targetVersion="1.1.0", origin="git")
    await run(world, "busy", 4)  # the fourth pass creates the snapshot
    _snapshot_error(world, "rpc error: code = DeadlineExceeded desc = array busy")
    assert await run(world, "busy", 2) == ["Snapshotting", "Snapshotting"]
    ur = world.get(R.UPGRADEREQUEST, "busy")
    assert "the CSI snapshotter retries" in ur["status"]["message"]
    assert "array busy" in ur["status"]["message"]
    assert ur["status"]["snapshots"][0]["error"].endswith("array busy")  # shown, not hidden
    assert world.get(R.HELMRELEASE, APP)["spec"]["suspend"] is True  # nothing released

    world.clock.advance(minutes=3)
    _snapshot_error(world, None)  # a later attempt works
    world.snapshots_ready()
    assert await run(world, "busy", 2) == ["Releasing", "Upgrading"]
    assert not world.get(R.UPGRADEREQUEST, "busy")["status"]["snapshots"][0].get("error")


async def test_a_snapshot_error_that_outlasts_the_timeout_fails_the_request(
    world: World,
) -> None:
    world.gate_holds("1.1.0")
    world.request("quota", targetVersion="1.1.0", origin="git")
    await run(world, "quota", 4)  # the fourth pass creates the snapshot
    _snapshot_error(world, "quota exceeded")
    assert await run(world, "quota") == ["Snapshotting"]
    world.clock.advance(minutes=11)  # the default snapshot timeout is 10m
    assert await run(world, "quota") == ["Failed"]
    message = _failed_unreleased(world, "quota", "SnapshotFailed")
    assert "snapshot failed" in message
    assert "(PVC data-web-0): quota exceeded" in message


async def test_an_unreadable_managedapp_fails_the_request_and_frees_the_lock(
    world: World,
) -> None:
    world.gate_holds("1.1.0")
    world.request("orphan", targetVersion="1.1.0", origin="git")
    await run(world, "orphan", 2)
    app = world.get(R.MANAGEDAPP, APP)
    app["spec"]["timeouts"] = {"snapshot": "soon"}  # not a duration: cannot be parsed
    world.kube.put(R.MANAGEDAPP, app)
    assert await run(world, "orphan") == ["Failed"]
    message = world.get(R.UPGRADEREQUEST, "orphan")["status"]["message"]
    assert message.startswith(f"ManagedApp {APP} cannot be read")
    assert "spec.timeouts.snapshot" in message
    assert "activeRequest" not in world.get(R.MANAGEDAPP, APP)["status"]


async def test_a_missing_managedapp_fails_the_request(world: World) -> None:
    world.request("lost", targetVersion="1.1.0", origin="git", managedAppRef={"name": "nope"})
    assert await run(world, "lost") == ["Failed"]
    assert "ManagedApp nope not found in namespace apps" in world.get(
        R.UPGRADEREQUEST, "lost")["status"]["message"]


async def test_helm_controller_retries_within_its_remediation_before_failing(
    world: World,
) -> None:
    hr = world.get(R.HELMRELEASE, APP)
    hr["spec"]["upgrade"] = {"remediation": {"retries": 1}}
    world.kube.put(R.HELMRELEASE, hr)
    world.gate_holds("1.1.0")
    world.request("flaky", targetVersion="1.1.0", origin="git")
    await run(world, "flaky", 4)
    world.snapshots_ready()
    assert await run(world, "flaky", 2) == ["Releasing", "Upgrading"]
    world.helm_releases("1.1.0", ready=False, reason="UpgradeFailed", failures=1)
    assert await run(world, "flaky") == ["Upgrading"]  # helm-controller tries once more
    assert "retries" in world.get(R.UPGRADEREQUEST, "flaky")["status"]["message"]
    world.helm_releases("1.1.0", ready=False, reason="UpgradeFailed", failures=2)
    assert await run(world, "flaky") == ["Failed"]
    assert world.get(R.UPGRADEREQUEST, "flaky")["status"]["message"].startswith(
        "helm-controller: UpgradeFailed")
    # a failed upgrade's approval is gone: 1.1.0 needs new snapshots to pass again
    assert ann.APPROVED not in world.get(R.HELMRELEASE, APP)["metadata"]["annotations"]


async def test_deleting_a_request_after_its_approval_removes_the_approval(
    world: World,
) -> None:
    world.gate_holds("1.1.0")
    world.request("late", targetVersion="1.1.0", origin="git")
    await run(world, "late", 4)
    world.snapshots_ready()
    assert await run(world, "late", 2) == ["Releasing", "Upgrading"]
    assert approval_of(world.get(R.HELMRELEASE, APP)) is not None
    await world.kube.delete(R.UPGRADEREQUEST, NS, "late")
    await reconcile_upgrade(world.ctx, world.get(R.UPGRADEREQUEST, "late"))
    assert world.kube.peek(R.UPGRADEREQUEST, NS, "late") is None
    assert ann.APPROVED not in world.get(R.HELMRELEASE, APP)["metadata"]["annotations"]


async def test_a_transient_api_error_waits_and_resumes(world: World) -> None:
    world.gate_holds("1.1.0")
    world.request("bumpy", targetVersion="1.1.0", origin="git")
    await run(world, "bumpy", 3)
    world.kube.fail("create", KubeError("create volumesnapshots: timed out (HTTP 504)"))
    assert await run(world, "bumpy") == ["Snapshotting"]
    assert "timed out (HTTP 504) (retrying)" in world.get(
        R.UPGRADEREQUEST, "bumpy")["status"]["message"]
    assert await run(world, "bumpy") == ["Snapshotting"]
    assert len(world.kube.all(R.SNAPSHOT, NS)) == 1


async def test_deleting_a_request_in_flight_frees_the_lock_and_records_it(
    world: World,
) -> None:
    world.gate_holds("1.1.0")
    world.request("gone", targetVersion="1.1.0", origin="git")
    await run(world, "gone", 3)
    await world.kube.delete(R.UPGRADEREQUEST, NS, "gone")
    await reconcile_upgrade(world.ctx, world.get(R.UPGRADEREQUEST, "gone"))
    assert world.kube.peek(R.UPGRADEREQUEST, NS, "gone") is None  # finalizer dropped
    status = world.get(R.MANAGEDAPP, APP)["status"]
    assert "activeRequest" not in status
    assert (status["lastUpgrade"]["upgradeRequest"], status["lastUpgrade"]["phase"]) == (
        "gone", "Failed")


async def test_a_dry_run_stops_after_preflight(world: World) -> None:
    world.request("dry", targetVersion="1.1.0", origin="git", dryRun=True)
    assert await run(world, "dry", 2) == ["Preflight", "Succeeded"]
    assert "dry run: preflight passed" in world.get(R.UPGRADEREQUEST, "dry")["status"][
        "message"]
    assert world.kube.all(R.SNAPSHOT) == []


async def _to_health_checking(world: World, name: str) -> None:
    world.gate_holds("1.1.0")
    world.request(name, targetVersion="1.1.0", origin="git")
    await run(world, name, 4)
    world.snapshots_ready()
    await run(world, name, 2)
    world.helm_releases("1.1.0")
    assert await run(world, name) == ["HealthChecking"]


async def test_the_http_check_never_shows_credentials_or_raw_errors(world: World) -> None:
    port = _closed_port()
    app = world.get(R.MANAGEDAPP, APP)
    app["spec"]["healthCheck"] = {
        "http": {"url": f"http://probe:s3cret@127.0.0.1:{port}/health?token=abc"}}
    world.kube.put(R.MANAGEDAPP, app)
    await _to_health_checking(world, "checked")
    assert await run(world, "checked") == ["HealthChecking"]
    message = world.get(R.UPGRADEREQUEST, "checked")["status"]["message"]
    assert message == f"HTTP check http://127.0.0.1:{port}/health: could not connect"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fleet_repo(tmp_path: Path) -> Path:
    """A bare Git repository (file://) holding the app's HelmRelease at 1.0.0."""
    bare = init_bare(tmp_path / "fleet.git")
    Remote(url=bare.as_uri(), workdir=tmp_path).seed({"apps/web.yaml": RELEASE})
    return bare


def _use_git(world: World, bare: Path, tmp_path: Path) -> GitCliBackend:
    """Point the app at ``bare`` through the Kustomization and GitRepository Flux uses."""
    backend = GitCliBackend(url=bare.as_uri(), branch="main", workdir=tmp_path / "clone")

    async def open_git(source: GitSource, namespace: str) -> GitBackend:
        return backend

    world.ctx.open_git = open_git
    app = world.get(R.MANAGEDAPP, APP)
    app["status"]["git"] = {"repositoryUrl": bare.as_uri(), "branch": "main", "path": "apps",
                            "file": "apps/web.yaml"}
    world.kube.put(R.MANAGEDAPP, app)
    hr = world.get(R.HELMRELEASE, APP)
    hr["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = "apps"
    hr["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/namespace"] = "flux-system"
    world.kube.put(R.HELMRELEASE, hr)
    world.kube.put(R.KUSTOMIZATION, {"metadata": {"name": "apps", "namespace": "flux-system"},
                                     "spec": {"sourceRef": {"kind": "GitRepository",
                                                            "name": "fleet"}}})
    world.kube.put(R.GITREPOSITORY, {"metadata": {"name": "fleet", "namespace": "flux-system"},
                                     "spec": {"url": bare.as_uri()}})
    return backend


async def test_a_retry_of_a_version_git_already_has_commits_nothing(
    world: World, tmp_path: Path, fleet_repo: Path
) -> None:
    """An earlier attempt's commit reached Git and that request failed: a new request for
    the same version is one action — it commits nothing and releases what the gate holds."""
    backend = _use_git(world, fleet_repo, tmp_path)
    text = (await backend.read_file("apps/web.yaml")).text
    await backend.commit_files({"apps/web.yaml": text.replace('"1.0.0"', '"1.1.0"')},
                               "an earlier attempt's commit")
    head = await backend.head()
    world.gate_holds("1.1.0")
    world.request("again", targetVersion="1.1.0", origin="kubectl")
    assert await run(world, "again", 4) == ["Preflight", "Committing", "AwaitingApply",
                                            "Snapshotting"]
    status = world.get(R.UPGRADEREQUEST, "again")["status"]
    checks = {c["name"]: c for c in status["preflight"]}
    assert checks["git-edit"] == {"name": "git-edit", "result": "Passed",
                                  "message": "Git already has the target version; nothing "
                                             "to commit"}
    assert status.get("gitCommit") is None
    assert await backend.head() == head


async def test_a_kubectl_request_commits_once_and_asks_flux_again_at_the_recorded_time(
    world: World, tmp_path: Path, fleet_repo: Path
) -> None:
    backend = _use_git(world, fleet_repo, tmp_path)
    world.request("bump", targetVersion="1.1.0", origin="kubectl")

    def asked() -> str | None:
        ks = world.get(R.KUSTOMIZATION, "apps", "flux-system")
        return (ks["metadata"].get("annotations") or {}).get(ann.REQUESTED_AT)

    assert await run(world, "bump", 3) == ["Preflight", "Committing", "AwaitingApply"]
    status = world.get(R.UPGRADEREQUEST, "bump")["status"]
    assert '-      version: "1.0.0"\n+      version: "1.1.0"\n' in status["gitDiff"]
    assert status["applyRequestedAt"] == "2026-03-01T10:00:00Z"
    first = asked()
    assert first is not None
    assert len(await backend.find_commit("Upgrade-Request", f"{NS}/bump") or "") == 40
    world.clock.advance(seconds=10)
    assert await run(world, "bump") == ["AwaitingApply"]
    assert asked() == first  # not yet: asked 10s ago
    world.clock.advance(seconds=11)
    assert await run(world, "bump") == ["AwaitingApply"]
    assert world.get(R.UPGRADEREQUEST, "bump")["status"]["applyRequestedAt"] == \
        "2026-03-01T10:00:21Z"
    world.gate_holds("1.1.0")  # Flux applied the commit; the gate holds it
    assert await run(world, "bump") == ["Snapshotting"]


async def test_a_suspended_kustomization_fails_preflight_before_any_commit(
    world: World, tmp_path: Path, fleet_repo: Path
) -> None:
    backend = _use_git(world, fleet_repo, tmp_path)
    head = await backend.head()
    ks = world.get(R.KUSTOMIZATION, "apps", "flux-system")
    ks["spec"]["suspend"] = True
    world.kube.put(R.KUSTOMIZATION, ks)
    world.request("stuck", targetVersion="1.1.0", origin="kubectl")
    assert await run(world, "stuck", 2) == ["Preflight", "Failed"]
    ur = world.get(R.UPGRADEREQUEST, "stuck")
    assert "Kustomization flux-system/apps is suspended" in ur["status"]["message"]
    check = next(c for c in ur["status"]["preflight"] if c["name"] == "flux-healthy")
    assert check["result"] == "Failed"
    assert await backend.head() == head  # nothing committed
    assert not world.kube.all(R.SNAPSHOT, NS)


async def test_a_broken_chart_source_fails_a_kubectl_request_and_warns_a_git_hold(
    world: World, tmp_path: Path, fleet_repo: Path
) -> None:
    _use_git(world, fleet_repo, tmp_path)
    app = world.get(R.MANAGEDAPP, APP)
    app["status"]["chartSource"] = {"kind": "HelmRepository", "name": "charts",
                                    "namespace": NS}
    world.kube.put(R.MANAGEDAPP, app)
    repo = world.get(R.HELMREPOSITORY, "charts")
    repo["status"] = {"conditions": [{"type": "Ready", "status": "False",
                                      "reason": "IndexationFailed",
                                      "message": "failed to fetch index: 503"}]}
    world.kube.put(R.HELMREPOSITORY, repo)
    world.request("bump", targetVersion="1.1.0", origin="kubectl")
    assert await run(world, "bump", 2) == ["Preflight", "Failed"]
    message = world.get(R.UPGRADEREQUEST, "bump")["status"]["message"]
    assert f"HelmRepository {NS}/charts is not Ready (IndexationFailed: failed to fetch " \
        "index: 503)" in message

    world.gate_holds("1.1.0")  # the same version pushed to Git by hand: Flux applied it
    world.request("hold", targetVersion="1.1.0", origin="git")
    assert await run(world, "hold", 3) == ["Preflight", "AwaitingApply", "Snapshotting"]
    checks = {c["name"]: c for c in world.get(R.UPGRADEREQUEST, "hold")["status"]["preflight"]}
    assert checks["flux-healthy"]["result"] == "Warning"
    assert "IndexationFailed" in checks["flux-healthy"]["message"]


async def test_an_unreadable_chart_source_is_a_warning_not_a_hold(world: World) -> None:
    repo = world.get(R.HELMREPOSITORY, "charts")
    repo["spec"]["url"] = f"http://127.0.0.1:{_closed_port()}/charts"
    world.kube.put(R.HELMREPOSITORY, repo)
    world.gate_holds("1.1.0")
    world.request("blind", targetVersion="1.1.0", origin="git")
    assert await run(world, "blind", 2) == ["Preflight", "AwaitingApply"]
    checks = {c["name"]: c for c in world.get(R.UPGRADEREQUEST, "blind")["status"]["preflight"]}
    assert checks["target-version-exists"]["result"] == "Warning"
    assert checks["target-version-exists"]["message"].startswith(
        "could not check: cannot read Helm repository index")


async def test_the_source_credentials_come_from_its_secret_ref(world: World) -> None:
    repo = world.get(R.HELMREPOSITORY, "charts")
    repo["spec"]["secretRef"] = {"name": "charts-auth"}
    world.kube.put(R.HELMREPOSITORY, repo)
    world.request("locked", targetVersion="1.1.0", origin="git", dryRun=True)
    assert await run(world, "locked", 2) == ["Preflight", "Succeeded"]
    checks = {c["name"]: c for c in world.get(R.UPGRADEREQUEST, "locked")["status"]["preflight"]}
    assert checks["target-version-exists"] == {
        "name": "target-version-exists", "result": "Warning",
        "message": "could not check: secretRef Secret apps/charts-auth not found"}
    world.kube.put(R.SECRET, {"metadata": {"name": "charts-auth", "namespace": NS},
                              "data": {"username": "dQ==", "password": "cA=="}})
    world.request("unlocked", targetVersion="1.1.0", origin="git", dryRun=True)
    await run(world, "unlocked", 2)
    checks = {c["name"]: c for c in world.get(R.UPGRADEREQUEST, "unlocked")["status"][
        "preflight"]}
    assert checks["target-version-exists"]["result"] == "Passed"


async def test_a_git_hold_of_the_running_version_is_snapshotted_and_released(
    world: World,
) -> None:
    """The gate held the running chart version for a change the version fields do not
    show (here: the chart source moved). The request does not fail as "already runs" —
    that would leave the release held for good — it snapshots and releases the hold."""
    world.gate_holds("1.0.0")  # what runs
    world.request("same", targetVersion="1.0.0", origin="git")
    assert await run(world, "same", 3) == ["Preflight", "AwaitingApply", "Snapshotting"]
    checks = {c["name"]: c for c in world.get(R.UPGRADEREQUEST, "same")["status"]["preflight"]}
    assert checks["target-differs"]["result"] == "Passed"
    assert "beyond its version fields" in checks["target-differs"]["message"]
    assert await run(world, "same") == ["Snapshotting"]  # taken, not ready yet
    world.snapshots_ready()
    assert await run(world, "same", 2) == ["Releasing", "Upgrading"]
    assert world.get(R.HELMRELEASE, APP)["spec"]["suspend"] is False


async def test_a_person_asking_for_the_running_version_is_told_so(world: World) -> None:
    world.request("noop", targetVersion="1.0.0")  # kubectl
    assert await run(world, "noop", 2) == ["Preflight", "Failed"]
    assert "already runs 1.0.0" in world.get(R.UPGRADEREQUEST, "noop")["status"]["message"]
    assert world.kube.all(R.SNAPSHOT, NS) == []


async def test_a_file_flux_could_no_longer_apply_is_refused_before_anything_is_committed(
    world: World, tmp_path: Path, fleet_repo: Path
) -> None:
    """The cluster stopped serving the apiVersion the app's file uses (a Flux upgrade
    dropped it): committing the bump would break the Kustomization's next apply, so the
    request fails in preflight, names the file and line, and Git is left alone."""
    backend = _use_git(world, fleet_repo, tmp_path)
    head = await backend.head()
    world.kube.unserved.add("helm.toolkit.fluxcd.io/v2")
    world.request("stale", targetVersion="1.1.0", origin="kubectl")
    assert await run(world, "stale", 2) == ["Preflight", "Failed"]
    status = world.get(R.UPGRADEREQUEST, "stale")["status"]
    checks = {c["name"]: c for c in status["preflight"]}
    assert checks["api-versions-served"]["result"] == "Failed"
    assert ("apps/web.yaml:1: HelmRelease web uses apiVersion helm.toolkit.fluxcd.io/v2, "
            "which the cluster does not serve") in status["message"]
    assert await backend.head() == head  # nothing committed
    assert world.kube.all(R.SNAPSHOT, NS) == []

    world.kube.unserved.clear()  # served again: the same version goes through
    world.request("fresh", targetVersion="1.1.0", origin="kubectl")
    assert (await run(world, "fresh", 2))[-1] == "Committing"
    checks = {c["name"]: c for c in world.get(R.UPGRADEREQUEST, "fresh")["status"]["preflight"]}
    assert checks["api-versions-served"] == {
        "name": "api-versions-served", "result": "Passed",
        "message": "the cluster serves all 1 object(s) in the changed file(s)"}


async def test_quiesce_finds_a_named_workload_where_helm_installs_it(world: World) -> None:
    """``quiesce.workloads`` without a namespace: the release's targetNamespace, where
    Helm put the workload (not the HelmRelease's own namespace)."""
    hr = world.get(R.HELMRELEASE, APP)
    hr["spec"]["targetNamespace"] = "data"
    world.kube.put(R.HELMRELEASE, hr)
    world.kube.put(R.STATEFULSET, {"metadata": {"name": "db", "namespace": "data",
                                                "generation": 1},
                                   "spec": {"replicas": 3}, "status": {"replicas": 3}})
    app = world.get(R.MANAGEDAPP, APP)
    app["spec"]["quiesce"] = {"enabled": True,
                              "workloads": [{"kind": "StatefulSet", "name": "db"}]}
    world.kube.put(R.MANAGEDAPP, app)
    world.gate_holds("1.1.0")
    world.request("q", targetVersion="1.1.0", origin="git")
    assert await run(world, "q", 4) == ["Preflight", "AwaitingApply", "Quiescing", "Quiescing"]
    status = world.get(R.UPGRADEREQUEST, "q")["status"]
    assert status["quiescedReplicas"] == [
        {"kind": "StatefulSet", "name": "db", "namespace": "data", "replicas": 3}]
    assert await run(world, "q") == ["Quiescing"]  # scaled down, waiting for its pods
    assert world.get(R.STATEFULSET, "db", "data")["spec"]["replicas"] == 0
