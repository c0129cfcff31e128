"""Line 2 of the gate end to end: Helm's release record, on the real helm-controller.

Changes that never touch a managed HelmRelease object pass line 1 by construction; these
tests show that line 2 holds them anyway: the apiserver calls FluxUp's webhook over TLS
on CREATE of the Helm release-record Secret, the denial leaves the running release
untouched (Helm writes the record *before* it applies any object), the operator turns
the denial into an UpgradeRequest, snapshots, approves exactly that identity and asks
helm-controller to retry — and the new identity runs only after the snapshots are
ReadyToUse.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import pytest

from fluxup.errors import SandboxError
from fluxup.logic import yamledit
from fluxup.sandbox import seed
from fluxup.sandbox.csidriver import SLOW_MARKER
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.processes import wait_until
from fluxup.sandbox.seed import DemoApp
from fluxup.sandbox.stack import Stack
from tests.integration.test_upgrade_e2e import _get, _time, _wait_request
from tests.integration.volumes import volume_dir

pytestmark = [pytest.mark.sandbox, pytest.mark.full]

IMAGE_POLICY = {"versionPolicy": {"images": [{"name": "demo-app", "valuesPath": "image.tag"}]}}


def _values_configmap(app: DemoApp, tag: str) -> str:
    return (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
        f"  name: {app.name}-values\n  namespace: {app.namespace}\n"
        f'data:\n  values.yaml: |\n    image:\n      tag: "{tag}"\n'
    )


def _deployment_image(stack: Stack, app: DemoApp) -> str:
    items = _get(stack.sandbox, "deployment", app.namespace)["items"]
    return str(items[0]["spec"]["template"]["spec"]["containers"][0]["image"])


def _enrol_app(stack: Stack, app: DemoApp, **spec: Any) -> dict[str, Any]:
    """Create the ManagedApp and wait until line 2 covers its release."""
    stack.enrol(app.namespace)
    body = {"apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
            "metadata": {"name": app.name, "namespace": app.namespace},
            "spec": {"helmReleaseRef": {"name": app.name}, **spec}}
    stack.sandbox.kubectl("apply", "-f", "-", input=json.dumps(body))

    def covered() -> dict[str, Any] | None:
        obj = _get(stack.sandbox, "managedapp", app.namespace, app.name) or {}
        gate = (obj.get("metadata", {}).get("annotations") or {}).get("fluxup.dev/release-gate")
        conds = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
        ready = conds.get("Ready", {}).get("status") == "True"
        return obj if gate and json.loads(gate)["deployed"] and ready else None

    try:
        return wait_until(f"ManagedApp {app.name} covered by line 2", covered, 120)
    except SandboxError:
        obj = _get(stack.sandbox, "managedapp", app.namespace, app.name)
        raise AssertionError(f"{json.dumps(obj, indent=1)[-3000:]}\n"
                             f"{stack.operator_log_tail()}") from None


def _record_denial(stack: Stack, app: DemoApp) -> dict[str, Any]:
    """Wait until helm-controller reports line 2's denial (asking it to retry meanwhile)."""
    def denied() -> dict[str, Any] | None:
        stack.sandbox.kubectl("annotate", "--overwrite", "helmrelease", app.name, "-n",
                              app.namespace, "--field-manager=fluxup-e2e",
                              f"reconcile.fluxcd.io/requestedAt={dt.datetime.now(dt.UTC)}")
        hr = _get(stack.sandbox, "helmrelease", app.namespace, app.name) or {}
        for cond in hr.get("status", {}).get("conditions", []):
            if "fluxup-hold=" in cond.get("message", ""):
                return hr
        return None

    try:
        return wait_until(f"line 2 to deny a revision of {app.name}", denied, 180, interval=2)
    except SandboxError:
        hr = _get(stack.sandbox, "helmrelease", app.namespace, app.name) or {}
        seen = {"annotations": hr.get("metadata", {}).get("annotations"),
                "suspend": hr.get("spec", {}).get("suspend"), "status": hr.get("status")}
        raise AssertionError(f"{json.dumps(seen, indent=1)}\n{stack.operator_log_tail()}"
                             ) from None


def _snapshots_before_deploy(stack: Stack, app: DemoApp, request: dict[str, Any]) -> None:
    """helm-controller ran the new identity only after every snapshot was ReadyToUse."""
    objects = _get(stack.sandbox, "volumesnapshot", app.namespace,
                   selector=f"fluxup.dev/upgrade-request={request['metadata']['name']}")["items"]
    assert objects
    assert all(s["status"]["readyToUse"] for s in objects)
    hr = _get(stack.sandbox, "helmrelease", app.namespace, app.name)
    deployed_at = _time(hr["status"]["history"][0]["lastDeployed"])
    taken = max(_time(s["status"]["creationTime"]) for s in objects)
    assert taken <= deployed_at, (taken, deployed_at)


def test_image_from_values_configmap_is_held_at_the_release_record(
    stack: Stack, fleet: Fleet
) -> None:
    """A ``valuesFrom`` ConfigMap bump never touches the HelmRelease: line 2 holds it."""
    sb = stack.sandbox
    app = DemoApp(f"vfrom-{secrets.token_hex(3)}", f"vfrom-{secrets.token_hex(3)}")
    fleet.add_app(app)
    fleet.wait_released(app, "1.0.0")
    path = f"flux/apps/{app.name}/helmrelease.yaml"
    text = fleet.read(path)
    moved = text.replace('      tag: "1.0.0"\n', "", 1).replace(
        "  values:\n",
        f"  valuesFrom:\n    - kind: ConfigMap\n      name: {app.name}-values\n"
        "      valuesKey: values.yaml\n  values:\n", 1)
    assert moved != text
    cm_path = f"flux/apps/{app.name}/values-configmap.yaml"
    fleet.commit({path: moved, cm_path: _values_configmap(app, "1.0.0")},
                 "image tag moves to a values ConfigMap")
    fleet.sync(app.name)
    wait_until("the HelmRelease to use valuesFrom", lambda: (
        (_get(sb, "helmrelease", app.namespace, app.name) or {}).get("spec", {})
        .get("valuesFrom")), 120)
    fleet.wait_released(app, "1.0.0")
    managed = _enrol_app(stack, app, **IMAGE_POLICY)
    assert _deployment_image(stack, app).endswith(":1.0.0")
    # slow snapshots: a window in which line 2 demonstrably holds the release
    pvc = managed["status"]["pvcs"][0]["name"]
    (volume_dir(sb, app.namespace, pvc) / SLOW_MARKER).write_text("6")

    fleet.commit({cm_path: _values_configmap(app, "1.1.0")}, "bump the image in the ConfigMap")
    fleet.sync(app.name)
    hr = _record_denial(stack, app)
    # Helm writes the record before any object: denied, nothing of 1.1.0 was applied
    assert _deployment_image(stack, app).endswith(":1.0.0")
    assert hr["status"]["history"][0]["status"] == "deployed"

    request = _wait_request(stack, app, "Succeeded")
    notes = request["metadata"]["annotations"]
    assert notes["fluxup.dev/held-at"] == "release-record"
    assert json.loads(notes["fluxup.dev/release-held"])["images"]["image.tag"] == "1.1.0"
    assert request["spec"]["origin"] == "git"
    assert _deployment_image(stack, app).endswith(":1.1.0")
    _snapshots_before_deploy(stack, app, request)
    # the approval ended with the request; the new identity is now the deployed one
    app_obj = _get(sb, "managedapp", app.namespace, app.name)
    app_notes = app_obj["metadata"]["annotations"]
    assert "fluxup.dev/release-approved" not in app_notes
    deployed = json.loads(app_notes["fluxup.dev/release-gate"])["deployed"]
    assert [d["images"]["image.tag"] for d in deployed] == ["1.1.0"]


def test_recreated_helmrelease_cannot_upgrade_a_running_release(
    stack: Stack, fleet: Fleet
) -> None:
    """Deleted and re-created by hand at a new version while the Helm release runs: the
    new object carries no label and no history, so only line 2 can see the upgrade."""
    sb = stack.sandbox
    app = DemoApp(f"recr-{secrets.token_hex(3)}", f"recr-{secrets.token_hex(3)}")
    fleet.add_app(app)
    fleet.wait_released(app, "1.0.0")
    _enrol_app(stack, app)
    # Flux must not put the Git version back while we work by hand
    sb.kubectl("patch", "kustomization", f"app-{app.name}", "-n", "flux-system",
               "--type=merge", "-p", '{"spec": {"suspend": true}}')
    sb.kubectl("patch", "helmrelease", app.name, "-n", app.namespace, "--type=merge",
               "-p", '{"spec": {"suspend": true}}')
    sb.kubectl("delete", "helmrelease", app.name, "-n", app.namespace, "--timeout=60s")
    text = yamledit.edit_chart_version(
        fleet.read(f"flux/apps/{app.name}/helmrelease.yaml"), name=app.name, version="1.1.0")
    sb.kubectl("apply", "-f", "-", input=text)
    _record_denial(stack, app)
    assert len(_get(sb, "secret", app.namespace, selector=f"owner=helm,name={app.name}")
               ["items"]) == 1  # the denied revision was never stored
    # line 1 may hold it too once the operator labels the new object: one request
    # serves both lines, whichever noticed first
    request = _wait_request(stack, app, "Succeeded")
    hr = _get(sb, "helmrelease", app.namespace, app.name)
    assert hr["status"]["history"][0]["chartVersion"] == "1.1.0"
    _snapshots_before_deploy(stack, app, request)


def test_a_forged_helmrelease_status_does_not_let_a_new_chart_run(
    stack: Stack, fleet: Fleet
) -> None:
    """Someone writes ``status.history`` through the status subresource to claim 1.1.0
    already runs, then applies 1.1.0: line 1 believes the status and passes the apply,
    but helm-controller's release record for 1.1.0 is denied at line 2, and 1.1.0 runs
    only after its snapshots are ReadyToUse."""
    sb = stack.sandbox
    app = DemoApp(f"forge-{secrets.token_hex(3)}", f"forge-{secrets.token_hex(3)}")
    fleet.add_app(app)
    fleet.wait_released(app, "1.0.0")
    managed = _enrol_app(stack, app)
    pvc = managed["status"]["pvcs"][0]["name"]
    (volume_dir(sb, app.namespace, pvc) / SLOW_MARKER).write_text("6")
    sb.kubectl("patch", "kustomization", f"app-{app.name}", "-n", "flux-system",
               "--type=merge", "-p", '{"spec": {"suspend": true}}')
    # helm-controller leaves a suspended release's status alone while we forge it
    sb.kubectl("patch", "helmrelease", app.name, "-n", app.namespace, "--type=merge",
               "-p", '{"spec": {"suspend": true}}')
    sb.kubectl("patch", "helmrelease", app.name, "-n", app.namespace,
               "--subresource=status", "--type=json", "-p", json.dumps(
                   [{"op": "replace", "path": "/status/history/0/chartVersion",
                     "value": "1.1.0"}]))
    text = yamledit.edit_chart_version(
        fleet.read(f"flux/apps/{app.name}/helmrelease.yaml"), name=app.name, version="1.1.0")
    sb.kubectl("apply", "--server-side", "--force-conflicts",
               "--field-manager=kustomize-controller", "-f", "-", input=text)
    hr = _get(sb, "helmrelease", app.namespace, app.name)
    assert "fluxup.dev/held" not in hr["metadata"].get("annotations", {})  # line 1 was fooled
    sb.kubectl("patch", "helmrelease", app.name, "-n", app.namespace, "--type=merge",
               "-p", '{"spec": {"suspend": false}}')  # allowed: line 1 thinks 1.1.0 runs

    _record_denial(stack, app)
    records = _get(sb, "secret", app.namespace, selector=f"owner=helm,name={app.name}")
    assert len(records["items"]) == 1  # the denied revision was never stored
    request = _wait_request(stack, app, "Succeeded")
    assert request["metadata"]["annotations"]["fluxup.dev/held-at"] == "release-record"
    hr = _get(sb, "helmrelease", app.namespace, app.name)
    assert hr["status"]["history"][0]["chartVersion"] == "1.1.0"
    assert hr["status"]["history"][0]["status"] == "deployed"
    _snapshots_before_deploy(stack, app, request)


#: a patch release of the demo chart that only this test publishes (and withdraws)
RANGE_PATCH = "1.0.5"


def test_a_semver_range_resolving_to_a_new_chart_is_held_at_the_release_record(
    stack: Stack, fleet: Fleet
) -> None:
    """The HelmRelease asks for ``~1.0.0``; a new chart in that range is published and
    nothing in Git or in the cluster's objects changes. Only helm-controller's resolution
    does: line 2 holds the revision, and 1.0.5 runs after its snapshots are ReadyToUse."""
    sb = stack.sandbox
    app = DemoApp(f"range-{secrets.token_hex(3)}", f"range-{secrets.token_hex(3)}",
                  chart_version="~1.0.0")
    fleet.add_app(app)
    fleet.wait_released(app, "1.0.0")
    managed = _enrol_app(stack, app)
    gated = {c["type"]: c for c in managed["status"]["conditions"]}["Gated"]
    assert (gated["status"], gated["reason"]) == ("True", "VersionRange")  # says line 2
    pvc = managed["status"]["pvcs"][0]["name"]
    (volume_dir(sb, app.namespace, pvc) / SLOW_MARKER).write_text("6")
    chart = (seed.FLUX_NAMESPACE, f"{app.namespace}-{app.name}")  # helm-controller's HelmChart
    fleet.publish(RANGE_PATCH, image=False)
    try:
        def resolved() -> bool:  # source-controller resolves the range at its interval
            fleet.request_reconcile("helmchart", *chart)
            source = _get(sb, "helmchart", *chart) or {}
            revision = (source.get("status", {}).get("artifact") or {}).get("revision", "")
            return str(revision).startswith(RANGE_PATCH)

        wait_until(f"the HelmChart to resolve ~1.0.0 to {RANGE_PATCH}", resolved, 120)
        hr = _record_denial(stack, app)
        assert hr["status"]["history"][0]["chartVersion"] == "1.0.0"  # still what runs
        request = _wait_request(stack, app, "Succeeded")
        notes = request["metadata"]["annotations"]
        assert notes["fluxup.dev/held-at"] == "release-record"
        assert json.loads(notes["fluxup.dev/release-held"])["version"] == RANGE_PATCH
        hr = _get(sb, "helmrelease", app.namespace, app.name)
        assert hr["status"]["history"][0]["chartVersion"] == RANGE_PATCH
        _snapshots_before_deploy(stack, app, request)
    finally:
        # the release stays where it is: a withdrawn chart would be a change of its own
        sb.kubectl("patch", "helmrelease", app.name, "-n", app.namespace, "--type=merge",
                   "-p", '{"spec": {"suspend": true}}', check=False)
        fleet.withdraw(RANGE_PATCH, image=False)


def test_nobody_but_the_operator_writes_line_2_state(stack: Stack, fleet: Fleet) -> None:
    """The approval on the ManagedApp is operator-only: a person cannot approve."""
    sb = stack.sandbox
    app = DemoApp(f"forge-{secrets.token_hex(3)}", f"forge-{secrets.token_hex(3)}")
    fleet.add_app(app)
    fleet.wait_released(app, "1.0.0")
    _enrol_app(stack, app)
    forged = json.dumps({"identity": {"chart": "demo-app", "version": "9.9.9"},
                         "request": "UpgradeRequest/x/y"})
    proc = sb.kubectl("annotate", "managedapp", app.name, "-n", app.namespace,
                      f"fluxup.dev/release-approved={forged}", check=False)
    assert proc.returncode != 0
    assert "only FluxUp" in proc.stderr
    proc = sb.kubectl("label", "--overwrite", "managedapp", app.name, "-n", app.namespace,
                      "fluxup.dev/release-key=elsewhere", check=False)
    assert proc.returncode != 0
    assert "only FluxUp" in proc.stderr


def _wait_app_request(stack: Stack, app: DemoApp, timeout: float = 300) -> dict[str, Any]:
    """The first finished UpgradeRequest of ``app`` (apps may share a namespace)."""
    def probe() -> dict[str, Any] | None:
        items = (_get(stack.sandbox, "upgraderequest", app.namespace) or {}).get("items", [])
        done = [r for r in items if r["spec"]["managedAppRef"]["name"] == app.name
                and (r.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
        return done[0] if done else None

    try:
        return wait_until(f"an UpgradeRequest of {app.name} to finish", probe, timeout)
    except SandboxError:
        items = _get(stack.sandbox, "upgraderequest", app.namespace)
        raise AssertionError(f"{json.dumps(items, indent=1)[-3000:]}\n"
                             f"{stack.operator_log_tail()}") from None


def test_shared_oci_repository_holds_until_every_app_is_protected(
    stack: Stack, fleet: Fleet
) -> None:
    """Two apps take their chart from one OCIRepository. Releasing the source for the
    first app's request lets helm-controller fetch the chart for both; the second app's
    revision is held at its release record until its own snapshots are ready."""
    sb = stack.sandbox
    namespace = f"shared-{secrets.token_hex(3)}"
    first = DemoApp(f"first-{secrets.token_hex(3)}", namespace, source="oci")
    second = DemoApp(f"second-{secrets.token_hex(3)}", namespace, source="oci",
                     create_namespace=False)
    fleet.add_app(first)
    fleet.wait_released(first, "1.0.0")
    fleet.add_app(second)
    fleet.wait_released(second, "1.0.0")
    hr_path = f"flux/apps/{second.name}/helmrelease.yaml"
    text = fleet.read(hr_path)
    shared = text.replace(f"    name: {second.name}\n    namespace:",
                          f"    name: {first.name}\n    namespace:", 1)
    assert shared != text
    fleet.commit({hr_path: shared, f"flux/apps/{second.name}/ocirepository.yaml": None},
                 f"{second.name} takes its chart from {first.name}'s OCIRepository")
    fleet.sync(second.name)
    wait_until("the second app to use the shared source", lambda: (
        (_get(sb, "helmrelease", namespace, second.name) or {}).get("spec", {})
        .get("chartRef", {}).get("name") == first.name), 120)
    fleet.wait_released(second, "1.0.0")
    _enrol_app(stack, first)
    _enrol_app(stack, second)

    oci_path = f"flux/apps/{first.name}/ocirepository.yaml"
    fleet.commit({oci_path: yamledit.edit_oci_tag(fleet.read(oci_path), name=first.name,
                                                   tag="1.1.0")},
                 "bump the shared chart source")
    fleet.sync(first.name)
    for app in (first, second):
        request = _wait_app_request(stack, app)
        assert request["status"]["phase"] == "Succeeded", json.dumps(request["status"])
        hr = _get(sb, "helmrelease", namespace, app.name)
        assert hr["status"]["history"][0]["chartVersion"].split("+")[0] == "1.1.0"
        _snapshots_before_deploy(stack, app, request)
