"""Rollbacks end to end: real Flux, real snapshots restored by the real CSI stack, the
real gate and operator, the real Git server. Data is compared byte for byte.

Each test upgrades its own app (own namespace) after writing known bytes into every
volume, overwrites them as a one-way migration would, rolls back and checks that every
claim holds the original bytes again, Git holds the previous version with one FluxUp
commit, helm-controller runs the previous version, replicas are back, and the volume
with the post-upgrade data still exists.
"""

from __future__ import annotations

import http.server
import json
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from fluxup.api.rollbackrequest import RollbackPhase
from fluxup.errors import SandboxError
from fluxup.logic import yamledit
from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.csidriver import SLOW_MARKER
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.processes import wait_until
from fluxup.sandbox.seed import DemoApp
from fluxup.sandbox.stack import Stack
from tests.integration.test_upgrade_e2e import (
    _bump,
    _create_request,
    _get,
    _managed_app,
    _replicas,
    _wait_request,
)
from tests.integration.volumes import bound_volume, pv_dir, volume_dir

pytestmark = [pytest.mark.sandbox, pytest.mark.full]

DATA = "data.bin"


def _write_known_bytes(sb: Sandbox, namespace: str, pvcs: list[str]) -> dict[str, bytes]:
    written = {}
    for pvc in pvcs:
        data = secrets.token_bytes(64 * 1024) + pvc.encode()
        (volume_dir(sb, namespace, pvc) / DATA).write_bytes(data)
        written[pvc] = data
    return written


def _migrate(sb: Sandbox, namespace: str, pvcs: list[str]) -> dict[str, tuple[str, bytes]]:
    """What a one-way migration of the new version does: overwrite the data. Returns
    PVC → (volume, post-upgrade bytes)."""
    after = {}
    for pvc in pvcs:
        volume = bound_volume(sb, namespace, pvc)
        data = b"migrated:" + secrets.token_bytes(4096)
        (pv_dir(sb, volume) / DATA).write_bytes(data)
        after[pvc] = (volume, data)
    return after


def _create_rollback(stack: Stack, app: DemoApp, name: str, **spec: Any) -> None:
    body = {"apiVersion": "fluxup.dev/v1alpha1", "kind": "RollbackRequest",
            "metadata": {"name": name, "namespace": app.namespace}, "spec": spec}
    stack.sandbox.kubectl("apply", "-f", "-", input=json.dumps(body))


def _wait_rollback(stack: Stack, app: DemoApp, name: str, phase: str,
                   timeout: float = 300) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = _get(stack.sandbox, "rollbackrequest", app.namespace, name) or {}
        done = (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        return obj if done else None

    try:
        rr = wait_until(f"RollbackRequest {name} to finish", probe, timeout, interval=1)
    except SandboxError:
        obj = _get(stack.sandbox, "rollbackrequest", app.namespace, name)
        raise AssertionError(f"{json.dumps(obj, indent=1)[-3000:]}\n"
                             f"{stack.operator_log_tail()}") from None
    assert rr["status"]["phase"] == phase, json.dumps(rr["status"], indent=1)
    return rr


def _rollback_commits(fleet: Fleet, app: DemoApp, name: str) -> list[str]:
    return [m for m in fleet.log() if f"Rollback-Request: {app.namespace}/{name}" in m]


def _assert_rolled_back(
    stack: Stack, fleet: Fleet, app: DemoApp, rr: dict[str, Any],
    original: dict[str, bytes], migrated: dict[str, tuple[str, bytes]],
    replicas: dict[str, int], version: str = "1.0.0",
) -> None:
    sb = stack.sandbox
    for pvc, data in original.items():
        volume = _get(sb, "pvc", app.namespace, pvc)["spec"]["volumeName"]
        old_volume, post = migrated[pvc]
        assert volume != old_volume, pvc
        assert (pv_dir(sb, volume) / DATA).read_bytes() == data, f"{pvc} not restored"
        old = _get(sb, "pv", "default", old_volume)
        assert old["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert old["metadata"]["labels"]["fluxup.dev/retained-by-rollback"] == \
            rr["metadata"]["name"]
        assert (pv_dir(sb, old_volume) / DATA).read_bytes() == post  # kept, not lost
    restored = {e["name"]: e for e in rr["status"]["restoredPVCs"]}
    assert set(restored) == set(original)
    assert all(e["restored"] and e["retainedVolume"] == migrated[e["name"]][0]
               for e in restored.values())
    hr = _get(sb, "helmrelease", app.namespace, app.name)
    assert hr["status"]["history"][0]["chartVersion"].split("+")[0] == version
    assert hr["spec"].get("suspend") in (None, False)
    ks = _get(sb, "kustomization", "flux-system", f"app-{app.name}")
    assert ks["spec"].get("suspend") in (None, False)
    assert _replicas(sb, app.namespace) == replicas
    conditions = {c["type"]: c["status"] for c in rr["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    assert conditions["VolumesRestored"] == "True"
    assert conditions["GitReverted"] == "True"
    assert conditions["Healthy"] == "True"
    assert len(_rollback_commits(fleet, app, rr["metadata"]["name"])) == 1
    events = (_get(sb, "events", app.namespace) or {}).get("items", [])
    reasons = {e["reason"] for e in events
               if e["involvedObject"]["name"] == rr["metadata"]["name"]}
    assert {"Validating", "RestoringVolumes", "RevertingGit", "Resuming",
            "Succeeded"} <= reasons, reasons
    status = _get(sb, "managedapp", app.namespace, app.name)["status"]
    assert status.get("activeRequest") in (None, {})


def _upgraded_app(
    stack: Stack, fleet: Fleet, app: DemoApp, how: str = "kubectl", **spec: Any
) -> tuple[dict[str, Any], dict[str, bytes], dict[str, int]]:
    """Deploy, write known bytes, upgrade to 1.1.0; return (request, bytes, replicas)."""
    managed = _managed_app(stack, fleet, app, **spec)
    pvcs = sorted(p["name"] for p in managed["status"]["pvcs"])
    assert len(pvcs) == 2, managed["status"]
    original = _write_known_bytes(stack.sandbox, app.namespace, pvcs)
    replicas = _replicas(stack.sandbox, app.namespace)
    if how == "kubectl":
        _create_request(stack, app, "up", targetVersion="1.1.0")
        request = _wait_request(stack, app, "Succeeded", name="up")
    elif how == "oci":
        path = f"flux/apps/{app.name}/ocirepository.yaml"
        fleet.commit({path: yamledit.edit_oci_tag(fleet.read(path), name=app.name, tag="1.1.0")},
                     f"bump {app.name} chart to 1.1.0")
        fleet.sync(app.name)
        request = _wait_request(stack, app, "Succeeded")
    else:
        _bump(fleet, app, "1.1.0")
        request = _wait_request(stack, app, "Succeeded")
    return request, original, replicas


def test_rollback_restores_every_byte_and_reverts_the_upgrade_commit(
    stack: Stack, fleet: Fleet
) -> None:
    app = DemoApp(f"rb-{secrets.token_hex(3)}", f"rb-{secrets.token_hex(3)}")
    request, original, replicas = _upgraded_app(stack, fleet, app)
    migrated = _migrate(stack.sandbox, app.namespace, sorted(original))
    _create_rollback(stack, app, "undo", upgradeRequestRef={"name": "up"})
    rr = _wait_rollback(stack, app, "undo", "Succeeded")
    _assert_rolled_back(stack, fleet, app, rr, original, migrated, replicas)
    message = _rollback_commits(fleet, app, "undo")[0]
    assert message.startswith(f"revert(deps): roll {app.name} back to 1.0.0")
    assert f"Reverts: {request['status']['gitCommit']}" in message
    assert 'version: "1.0.0"' in fleet.read(f"flux/apps/{app.name}/helmrelease.yaml")
    assert rr["status"]["revertCommit"]
    assert (rr["status"]["fromVersion"], rr["status"]["toVersion"]) == ("1.1.0", "1.0.0")
    assert rr["status"]["managedApp"] == app.name
    released = json.loads(_get(stack.sandbox, "helmrelease", app.namespace, app.name)
                          ["metadata"]["annotations"]["fluxup.dev/released"])
    assert released["chart"] == "1.0.0"


def test_rollback_of_a_git_push_upgrade_from_a_snapshot(stack: Stack, fleet: Fleet) -> None:
    app = DemoApp(f"rbpush-{secrets.token_hex(3)}", f"rbpush-{secrets.token_hex(3)}")
    request, original, replicas = _upgraded_app(stack, fleet, app, how="git")
    assert request["spec"]["origin"] == "git"
    migrated = _migrate(stack.sandbox, app.namespace, sorted(original))
    snapshot = request["status"]["snapshots"][0]["name"]
    _create_rollback(stack, app, "from-snap", snapshotRef={"name": snapshot})
    rr = _wait_rollback(stack, app, "from-snap", "Succeeded")
    _assert_rolled_back(stack, fleet, app, rr, original, migrated, replicas)
    message = _rollback_commits(fleet, app, "from-snap")[0]
    assert "Reverts:" not in message  # nothing of FluxUp's to revert: committed forward
    assert 'version: "1.0.0"' in fleet.read(f"flux/apps/{app.name}/helmrelease.yaml")
    assert rr["status"]["upgradeRequest"] == request["metadata"]["name"]


def test_rollback_of_an_oci_chart_ref_app(stack: Stack, fleet: Fleet) -> None:
    app = DemoApp(f"rboci-{secrets.token_hex(3)}", f"rboci-{secrets.token_hex(3)}",
                  source="oci")
    request, original, replicas = _upgraded_app(stack, fleet, app, how="oci")
    migrated = _migrate(stack.sandbox, app.namespace, sorted(original))
    _create_rollback(stack, app, "undo-oci", upgradeRequestRef={"name": request["metadata"]
                                                                ["name"]})
    rr = _wait_rollback(stack, app, "undo-oci", "Succeeded")
    _assert_rolled_back(stack, fleet, app, rr, original, migrated, replicas)
    text = fleet.read(f"flux/apps/{app.name}/ocirepository.yaml")
    assert "tag: 1.0.0" in text.replace('"', ""), text
    oci = _get(stack.sandbox, "ocirepository", app.namespace, app.name)
    assert oci["spec"]["ref"]["tag"] == "1.0.0"
    assert oci["spec"].get("suspend") in (None, False)


def _state(sb: Sandbox, app: DemoApp) -> tuple[Any, ...]:
    hr = _get(sb, "helmrelease", app.namespace, app.name)
    pvcs = _get(sb, "pvc", app.namespace)["items"]
    return (hr["status"]["history"][0]["chartVersion"], hr["spec"].get("suspend"),
            sorted((p["metadata"]["name"], p["metadata"]["uid"]) for p in pvcs),
            _replicas(sb, app.namespace))


def test_invalid_rollbacks_are_refused_and_change_nothing(stack: Stack, fleet: Fleet) -> None:
    sb = stack.sandbox
    app = DemoApp(f"rbbad-{secrets.token_hex(3)}", f"rbbad-{secrets.token_hex(3)}")
    request, _, _ = _upgraded_app(stack, fleet, app)
    before, log = _state(sb, app), fleet.log(5)

    # neither or both references: the API server refuses the object itself
    for spec in ({}, {"upgradeRequestRef": {"name": "up"}, "snapshotRef": {"name": "x"}}):
        body = {"apiVersion": "fluxup.dev/v1alpha1", "kind": "RollbackRequest",
                "metadata": {"name": "bad-refs", "namespace": app.namespace}, "spec": spec}
        out = sb.kubectl("apply", "-f", "-", input=json.dumps(body), check=False)
        assert out.returncode != 0
        assert "exactly one of upgradeRequestRef or snapshotRef" in out.stderr

    _create_rollback(stack, app, "no-such-snap", snapshotRef={"name": "nope"})
    rr = _wait_rollback(stack, app, "no-such-snap", "Failed")
    assert f"VolumeSnapshot {app.namespace}/nope does not exist" in rr["status"]["message"]

    _create_rollback(stack, app, "no-such-upgrade", upgradeRequestRef={"name": "nope"})
    rr = _wait_rollback(stack, app, "no-such-upgrade", "Failed")
    assert f"UpgradeRequest {app.namespace}/nope does not exist" in rr["status"]["message"]

    # a snapshot of this upgrade that never becomes ready, and one labelled for another app
    snap = request["status"]["snapshots"][0]
    for name, app_label in ((f"{request['metadata']['name']}-zz-unready", app.name),
                            (f"{request['metadata']['name']}-zz-foreign", "someone-else")):
        body = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
                "metadata": {"name": name, "namespace": app.namespace, "labels": {
                    "fluxup.dev/managed-app": app_label,
                    "fluxup.dev/upgrade-request": request["metadata"]["name"]},
                    "annotations": {"fluxup.dev/source-pvc": f"gone-{name[-7:]}"}},
                "spec": {"source": {"persistentVolumeClaimName": f"gone-{name[-7:]}"}}}
        sb.kubectl("apply", "-f", "-", input=json.dumps(body))
    _create_rollback(stack, app, "bad-set", snapshotRef={"name": snap["name"]})
    rr = _wait_rollback(stack, app, "bad-set", "Failed")
    message = rr["status"]["message"]
    assert "zz-unready is not ReadyToUse" in message or "zz-unready failed" in message, message
    assert "belongs to app someone-else" in message, message
    assert "nothing was changed" in message
    ready = next(c for c in rr["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SnapshotNotFound")
    for name in ("zz-unready", "zz-foreign"):
        sb.kubectl("delete", "volumesnapshot", f"{request['metadata']['name']}-{name}",
                   "-n", app.namespace, "--wait=false")

    assert _state(sb, app) == before  # every claim the same object, same version
    assert fleet.log(5) == log

    # app busy: another upgrade is in flight (kept busy snapshotting)
    pvc = request["status"]["snapshots"][0]["pvc"]
    (volume_dir(sb, app.namespace, pvc) / SLOW_MARKER).write_text("60")
    _create_request(stack, app, "busy", targetVersion="1.2.0")
    wait_until("the second upgrade to hold the app", lambda: (
        _get(sb, "managedapp", app.namespace, app.name)["status"].get("activeRequest") or {}
    ).get("name") == "busy", 120)
    _create_rollback(stack, app, "while-busy", upgradeRequestRef={"name": "up"})
    rr = _wait_rollback(stack, app, "while-busy", "Failed")
    assert "is busy: UpgradeRequest busy is" in rr["status"]["message"]
    assert next(c for c in rr["status"]["conditions"]
                if c["type"] == "Ready")["reason"] == "AppBusy"
    assert _state(sb, app)[2] == before[2]  # no claim touched
    assert not [m for m in fleet.log() if f"Rollback-Request: {app.namespace}/" in m]
    sb.kubectl("patch", "managedapp", app.name, "-n", app.namespace, "--type=merge",
               "-p", '{"spec": {"suspend": true}}')
    sb.kubectl("delete", "upgraderequest", "busy", "-n", app.namespace, "--wait=true",
               "--timeout=60s")


class _Health(http.server.BaseHTTPRequestHandler):
    healthy = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200 if self.healthy.is_set() else 503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def health_server() -> Iterator[tuple[str, threading.Event]]:
    """An HTTP endpoint the ManagedApp's health check calls; the test decides its answer
    (the sandbox's pods are KWOK's, so nothing real answers HTTP)."""
    flag = threading.Event()
    handler = type("Health", (_Health,), {"healthy": flag})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/healthz", flag
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_auto_rollback_after_a_failed_health_check(
    stack: Stack, fleet: Fleet, health_server: tuple[str, threading.Event]
) -> None:
    sb = stack.sandbox
    url, healthy = health_server
    healthy.set()
    app = DemoApp(f"rbauto-{secrets.token_hex(3)}", f"rbauto-{secrets.token_hex(3)}")
    managed = _managed_app(stack, fleet, app, autoRollback=True,
                           healthCheck={"timeout": "20s", "http": {"url": url}})
    pvcs = sorted(p["name"] for p in managed["status"]["pvcs"])
    original = _write_known_bytes(sb, app.namespace, pvcs)
    replicas = _replicas(sb, app.namespace)
    healthy.clear()  # the new version answers 503
    _create_request(stack, app, "bad", targetVersion="1.1.0")
    migrated: dict[str, tuple[str, bytes]] = {}

    def failed() -> dict[str, Any] | None:
        obj = _get(sb, "upgraderequest", app.namespace, "bad") or {}
        phase = (obj.get("status") or {}).get("phase")
        if phase == "HealthChecking" and not migrated:
            migrated.update(_migrate(sb, app.namespace, pvcs))
        return obj if phase in ("Succeeded", "Failed") else None

    request = wait_until("the upgrade to fail its health check", failed, 300, interval=0.5)
    assert request["status"]["phase"] == "Failed", request["status"]
    assert migrated, "the upgrade never reached HealthChecking"
    name = request["status"]["rollbackRequest"]
    assert name == "bad-rollback"
    healthy.set()  # the previous version answers again
    rr = _wait_rollback(stack, app, name, "Succeeded")
    assert rr["spec"]["origin"] == "auto"
    _assert_rolled_back(stack, fleet, app, rr, original, migrated, replicas)
    rollbacks = _get(sb, "rollbackrequest", app.namespace)["items"]
    assert len(rollbacks) == 1  # once


def test_operator_sigkill_in_every_rollback_phase(stack: Stack, fleet: Fleet) -> None:
    app = DemoApp(f"rbkill-{secrets.token_hex(3)}", f"rbkill-{secrets.token_hex(3)}")
    request, original, replicas = _upgraded_app(stack, fleet, app)
    migrated = _migrate(stack.sandbox, app.namespace, sorted(original))
    _create_rollback(stack, app, "crashy", upgradeRequestRef={"name": "up"})
    killed: list[str] = []

    def kill_on_new_phase() -> dict[str, Any] | None:
        obj = _get(stack.sandbox, "rollbackrequest", app.namespace, "crashy") or {}
        phase = (obj.get("status") or {}).get("phase", "Pending")
        if phase in ("Succeeded", "Failed"):
            return obj
        if phase not in killed:
            killed.append(phase)
            stack.kill_operator()
            stack.start_operator()
        return None

    try:
        rr = wait_until("the rollback to finish despite SIGKILLs", kill_on_new_phase, 500,
                        interval=0.2)
    except SandboxError:
        obj = _get(stack.sandbox, "rollbackrequest", app.namespace, "crashy") or {}
        raise AssertionError(f"killed in {killed}; {json.dumps(obj.get('status'), indent=1)}"
                             f"\n{stack.operator_log_tail()}") from None
    finally:
        stack.start_operator()  # no-op when it runs
    assert rr["status"]["phase"] == "Succeeded", (killed, rr["status"])
    # every phase killed in lies on the rollback's route, in its order; phases that finish
    # in one pass may be left before the test sees them, those that wait cannot be
    route = [p.value for p in RollbackPhase if p.value not in ("Succeeded", "Failed")]
    assert killed == [p for p in route if p in killed], killed
    assert {"RestoringVolumes", "Resuming"} <= set(killed), killed
    _assert_rolled_back(stack, fleet, app, rr, original, migrated, replicas)
    assert request["status"]["phase"] == "Succeeded"
