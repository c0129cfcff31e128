"""Leaks of issue 8, end to end: new identities that reach helm-controller by side roads.

Each test takes one road a new identity could use to run without FluxUp's snapshots and
shows, on the real helm-controller, webhook and operator, that it never ran before
ReadyToUse snapshots for it existed, or never ran at all:

* a second HelmRelease object (created by hand, not from Git) that addresses the same
  Helm release under another name: it carries no FluxUp label and no history, so only
  line 2 (the release record, keyed by storage namespace and release name) sees it;
* a chart source change at the same chart version: line 1 counts the source as part of
  the identity, holds it, and the hold's UpgradeRequest snapshots, then releases it.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import secrets
from typing import Any

import pytest

from fluxup.errors import SandboxError
from fluxup.logic.release_record import decode_release, parse_hold_marker
from fluxup.sandbox import seed
from fluxup.sandbox.csidriver import SLOW_MARKER
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.processes import wait_until
from fluxup.sandbox.seed import DemoApp
from fluxup.sandbox.stack import Stack
from tests.integration.test_release_record_e2e import _enrol_app
from tests.integration.test_upgrade_e2e import _get, _time, _wait_request
from tests.integration.volumes import volume_dir

pytestmark = [pytest.mark.sandbox, pytest.mark.full]


def _records(stack: Stack, app: DemoApp) -> list[dict[str, Any]]:
    """Helm's release records (Secrets) of ``app``'s release, oldest revision first."""
    items = _get(stack.sandbox, "secret", app.namespace,
                 selector=f"owner=helm,name={app.name}")["items"]
    return sorted(items, key=lambda s: int(s["metadata"]["labels"]["version"]))


def _denial_of(hr: dict[str, Any]) -> dict[str, Any] | None:
    """The Ready condition of ``hr`` when it reports line 2's denial."""
    for cond in (hr.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready" and "fluxup-hold=" in cond.get("message", ""):
            return dict(cond)
    return None


def _delete_twin(stack: Stack, namespace: str, name: str) -> None:
    """Remove a hand-made HelmRelease without touching the release it addressed: a
    suspended HelmRelease is deleted without a Helm uninstall (helm-controller then leaves
    its HelmChart behind, so that goes too)."""
    sb = stack.sandbox
    sb.kubectl("patch", "helmrelease", name, "-n", namespace, "--type=merge",
               "-p", '{"spec": {"suspend": true}}', check=False)
    sb.kubectl("delete", "helmrelease", name, "-n", namespace, "--ignore-not-found",
               "--wait=true", "--timeout=60s", check=False)
    sb.kubectl("delete", "helmchart", f"{namespace}-{name}", "-n", seed.FLUX_NAMESPACE,
               "--ignore-not-found", "--wait=false", check=False)


def test_a_second_helmrelease_with_the_same_release_name_cannot_upgrade_it(
    stack: Stack, fleet: Fleet
) -> None:
    """Someone creates, with kubectl, a second HelmRelease (another ``metadata.name``,
    the same ``spec.releaseName`` and storage namespace) asking for a newer chart. Line 1
    never sees it (no FluxUp label); line 2 denies its Helm release record, so the release
    keeps running what the managed HelmRelease deployed."""
    sb = stack.sandbox
    app = DemoApp(f"twin-{secrets.token_hex(3)}", f"twin-{secrets.token_hex(3)}")
    fleet.add_app(app)
    fleet.wait_released(app, "1.0.0")
    _enrol_app(stack, app)
    hr = _get(sb, "helmrelease", app.namespace, app.name)
    running = hr["status"]["history"][0]
    assert (running["name"], running["namespace"]) == (app.name, app.namespace)
    assert hr["spec"]["releaseName"] == app.name
    records = _records(stack, app)
    assert [decode_release(r["data"]["release"]).version for r in records] == ["1.0.0"]

    twin = f"{app.name}-twin"
    spec = copy.deepcopy(hr["spec"])
    spec.pop("suspend", None)
    spec["releaseName"] = app.name  # the Helm release the managed HelmRelease runs
    spec["storageNamespace"] = app.namespace  # where Helm keeps its records
    spec["chart"]["spec"]["version"] = "1.1.0"
    body = {"apiVersion": hr["apiVersion"], "kind": "HelmRelease",
            "metadata": {"name": twin, "namespace": app.namespace}, "spec": spec}
    try:
        sb.kubectl("create", "-f", "-", input=json.dumps(body))
        assert "fluxup.dev/managed-app" not in (
            _get(sb, "helmrelease", app.namespace, twin)["metadata"].get("labels") or {})

        def denied() -> dict[str, Any] | None:
            sb.kubectl("annotate", "--overwrite", "helmrelease", twin, "-n", app.namespace,
                       "--field-manager=fluxup-e2e",
                       f"reconcile.fluxcd.io/requestedAt={dt.datetime.now(dt.UTC)}")
            obj = _get(sb, "helmrelease", app.namespace, twin) or {}
            return _denial_of(obj)

        try:
            cond = wait_until(f"line 2 to deny {twin}'s revision of {app.name}", denied, 180,
                              interval=2)
        except SandboxError:
            obj = _get(sb, "helmrelease", app.namespace, twin) or {}
            raise AssertionError(f"{json.dumps(obj.get('status'), indent=1)}\n"
                                 f"{stack.operator_log_tail()}") from None
        assert cond["status"] == "False"
        assert f"FluxUp holds Helm release {app.namespace}/{app.name}" in cond["message"]
        held = parse_hold_marker(cond["message"])
        assert held is not None
        assert (held.chart, held.version) == ("demo-app", "1.1.0")

        # the denied revision was never stored; Helm's record still says 1.0.0 runs
        after = _records(stack, app)
        assert [r["metadata"]["name"] for r in after] == [r["metadata"]["name"]
                                                          for r in records]
        assert after[-1]["metadata"]["labels"]["status"] == "deployed"
        assert decode_release(after[-1]["data"]["release"]).version == "1.0.0"
        # the managed HelmRelease still reports the revision it deployed
        hr = _get(sb, "helmrelease", app.namespace, app.name)
        assert hr["status"]["history"][0]["chartVersion"] == "1.0.0"
        assert hr["status"]["history"][0]["version"] == running["version"]
        assert hr["status"]["history"][0]["lastDeployed"] == running["lastDeployed"]
        # and nothing of chart 1.1.0 reached the cluster's objects
        deployment = _get(sb, "deployment", app.namespace, f"{app.name}-web")
        assert deployment["metadata"]["labels"]["helm.sh/chart"] == "demo-app-1.0.0"
        assert not [h for h in (_get(sb, "helmrelease", app.namespace, twin)["status"]
                                .get("history") or [])
                    if str(h.get("chartVersion", "")).startswith("1.1.0")
                    and h.get("status") == "deployed"]
    finally:
        _delete_twin(stack, app.namespace, twin)
    assert _get(sb, "helmrelease", app.namespace, twin) is None
    # removing the second HelmRelease uninstalled nothing: 1.0.0 still runs
    assert [decode_release(r["data"]["release"]).version for r in _records(stack, app)] == [
        "1.0.0"]
    hr = _get(sb, "helmrelease", app.namespace, app.name)
    assert hr["status"]["history"][0]["version"] == running["version"]


def _helm_repository(name: str, namespace: str, url: str) -> str:
    return (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n"
        f"  name: {name}\n  namespace: {namespace}\n"
        f"spec:\n  interval: 1m\n  url: {url}\n  timeout: 30s\n"
    )


def test_a_changed_chart_source_is_a_new_identity_and_is_held(
    stack: Stack, fleet: Fleet
) -> None:
    """Git moves the HelmRelease to another HelmRepository (a mirror of the same chart
    repository, in the app's namespace) at the same chart version. The source is part of
    the identity: held, snapshotted, released by its UpgradeRequest without a human.

    helm-controller takes the chart from the new source only once released: the HelmChart
    it makes for that source is created after every snapshot was taken."""
    sb = stack.sandbox
    app = DemoApp(f"src-{secrets.token_hex(3)}", f"src-{secrets.token_hex(3)}")
    fleet.add_app(app)
    fleet.wait_released(app, "1.0.0")
    managed = _enrol_app(stack, app)
    pvcs = [p["name"] for p in managed["status"]["pvcs"]]
    assert pvcs
    before = _get(sb, "helmrelease", app.namespace, app.name)["status"]
    assert before["helmChart"] == f"{seed.FLUX_NAMESPACE}/{app.namespace}-{app.name}"
    records = [r["metadata"]["name"] for r in _records(stack, app)]

    mirror = f"{app.name}-mirror"
    url = _get(sb, "helmrepository", seed.FLUX_NAMESPACE, "demo-charts")["spec"]["url"]
    path = f"flux/apps/{app.name}/helmrelease.yaml"
    text = fleet.read(path)
    moved = text.replace(
        "        name: demo-charts\n        namespace: flux-system\n",
        f"        name: {mirror}\n        namespace: {app.namespace}\n", 1)
    assert moved != text
    assert 'version: "1.0.0"' in moved  # the same chart version
    # slow snapshots: a window in which the hold is there to be seen
    (volume_dir(sb, app.namespace, pvcs[0]) / SLOW_MARKER).write_text("8")
    fleet.commit({f"flux/apps/{app.name}/helmrepository.yaml":
                  _helm_repository(mirror, app.namespace, url), path: moved},
                 f"{app.name} takes demo-app 1.0.0 from {mirror}")
    fleet.sync(app.name)
    new_source = f"chart:demo-app@HelmRepository/{app.namespace}/{mirror}"

    def held() -> dict[str, Any] | None:
        obj = _get(sb, "helmrelease", app.namespace, app.name) or {}
        notes = obj.get("metadata", {}).get("annotations") or {}
        return obj if obj.get("spec", {}).get("suspend") and "fluxup.dev/held" in notes \
            else None

    try:
        hr = wait_until("the gate to hold the new chart source", held, 120)
    except SandboxError:
        obj = _get(sb, "helmrelease", app.namespace, app.name) or {}
        raise AssertionError(f"{json.dumps(obj.get('metadata'), indent=1)[-3000:]}\n"
                             f"{stack.operator_log_tail()}") from None
    identity = json.loads(hr["metadata"]["annotations"]["fluxup.dev/held"])
    assert identity["source"] == new_source
    assert identity["chart"] == "1.0.0"
    assert hr["spec"]["chart"]["spec"]["sourceRef"]["name"] == mirror

    request = _wait_request(stack, app, "Succeeded")
    assert request["spec"]["origin"] == "git"
    assert request["spec"]["targetVersion"] == "1.0.0"
    objects = _get(sb, "volumesnapshot", app.namespace,
                   selector=f"fluxup.dev/upgrade-request={request['metadata']['name']}")["items"]
    assert sorted(s["spec"]["source"]["persistentVolumeClaimName"] for s in objects) == \
        sorted(pvcs)
    assert all(s["status"]["readyToUse"] for s in objects)
    taken = max(_time(s["status"]["creationTime"]) for s in objects)

    hr = _get(sb, "helmrelease", app.namespace, app.name)
    assert hr["spec"].get("suspend") in (None, False)
    notes = hr["metadata"]["annotations"]
    assert "fluxup.dev/held" not in notes
    assert json.loads(notes["fluxup.dev/released"])["source"] == new_source
    status = hr["status"]
    assert status["observedGeneration"] == hr["metadata"]["generation"]
    # helm-controller fetched the chart from the new source only after the snapshots
    assert status["helmChart"] == f"{app.namespace}/{app.namespace}-{app.name}"
    chart = _get(sb, "helmchart", app.namespace, f"{app.namespace}-{app.name}")
    ref = chart["spec"]["sourceRef"]
    assert (ref["kind"], ref["name"]) == ("HelmRepository", mirror)
    assert taken <= _time(chart["metadata"]["creationTimestamp"]), (
        taken, chart["metadata"]["creationTimestamp"])
    # the same chart bytes at the same version: helm-controller finds the release in sync
    # and writes no revision, so no new identity ran before the snapshots — or since
    latest = status["history"][0]
    assert [r["metadata"]["name"] for r in _records(stack, app)] == records
    assert latest["version"] == before["history"][0]["version"]
    assert latest["lastDeployed"] == before["history"][0]["lastDeployed"]
    assert _time(latest["lastDeployed"]) <= taken
