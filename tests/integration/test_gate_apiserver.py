"""The admission gate against a real kube-apiserver (the sandbox) and the real Flux CRDs.

The webhook runs as its own process on 127.0.0.1 with certificates from ``certs/``; the
webhook configurations are FluxUp's own manifests (manifests/webhook/core), pointed at it
by URL and confined to this module's namespaces. Flux's apply is a server-side apply with
field manager ``kustomize-controller``; helm-/source-controller status is written through
the status subresource; the operator acts by impersonation.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from certs.files import ensure_cert_files
from fluxup.api import annotations as ann
from fluxup.logic.identity import GatedKind, build_approval, determine_desired
from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.processes import free_port
from webhook.local import LocalWebhook, build_local_configurations

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parents[2]
OPERATOR = "system:serviceaccount:fluxup-system:fluxup-operator"
AS_OPERATOR = f"--as={OPERATOR}"
HR = "helmrelease.helm.toolkit.fluxcd.io"
OCI = "ocirepository.source.toolkit.fluxcd.io"


class Gate:
    """The running webhook plus what this module registered for it."""

    def __init__(self, sandbox: Sandbox, webhook: LocalWebhook, token: str) -> None:
        self.sandbox, self.webhook, self.token = sandbox, webhook, token

    def requests(self, kind: str | None = None) -> int:
        return sum(n for (_, k, _), n in self.webhook.request_counts().items()
                   if kind is None or k == kind)


@pytest.fixture(scope="module")
def gate(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gate]:
    token = secrets.token_hex(3)
    work = tmp_path_factory.mktemp("gate")
    webhook = LocalWebhook(work / "certs", free_port(), OPERATOR, work / "webhook.log")
    webhook.start()
    manifest = REPO / "manifests/webhook/core/webhookconfigurations.yaml"
    configs = build_local_configurations(
        list(yaml.safe_load_all(manifest.read_text())),
        webhook.url,
        webhook.files.ca_bundle.read_bytes(),
        name=f"fluxup-gate-it-{token}",
        namespace_selector={"matchLabels": {"fluxup.dev/gate-test": token}},
    )
    rbac = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": f"fluxup-gate-it-{token}"},
         "rules": [{"apiGroups": ["helm.toolkit.fluxcd.io", "source.toolkit.fluxcd.io"],
                    "resources": ["helmreleases", "ocirepositories"],
                    "verbs": ["get", "list", "watch", "patch", "update"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": f"fluxup-gate-it-{token}"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": f"fluxup-gate-it-{token}"},
         "subjects": [{"kind": "ServiceAccount", "name": "fluxup-operator",
                       "namespace": "fluxup-system"}]},
    ]
    items = {"apiVersion": "v1", "kind": "List", "items": configs + rbac}
    sandbox.kubectl("apply", "-f", "-", input=json.dumps(items))
    try:
        yield Gate(sandbox, webhook, token)
    finally:
        sandbox.kubectl("delete", "-f", "-", "--ignore-not-found", input=json.dumps(items),
                        check=False)
        webhook.stop()


@pytest.fixture
def ns(gate: Gate, namespace: str) -> Iterator[str]:
    gate.sandbox.kubectl("label", "namespace", namespace, f"fluxup.dev/gate-test={gate.token}")
    yield namespace
    # helm-controller runs in the full sandbox and removes its finalizers from these objects
    # when they are deleted (updates the webhook sees): finish that before the next test
    # counts webhook requests
    gate.sandbox.kubectl("delete", "helmreleases,ocirepositories", "--all", "-n", namespace,
                         "--wait=true", "--timeout=60s", check=False)


# --- helpers --------------------------------------------------------------------------


def helm_release(ns: str, version: str, *, name: str = "my-app", managed: bool = True,
                 values: dict[str, Any] | None = None, chart_ref: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"interval": "10m"}
    if chart_ref:
        spec["chartRef"] = {"kind": "OCIRepository", "name": name}
    else:
        spec["chart"] = {"spec": {"chart": "app", "version": version,
                                  "sourceRef": {"kind": "HelmRepository", "name": "charts"}}}
    if values is not None:
        spec["values"] = values
    labels = {ann.MANAGED_APP_LABEL: name} if managed else {}
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": spec}


def oci_repository(ns: str, ref: dict[str, str], *, name: str = "my-app") -> dict[str, Any]:
    return {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {ann.MANAGED_APP_LABEL: name}},
            "spec": {"interval": "10m", "url": "oci://registry.example/charts/app", "ref": ref}}


def flux_apply(sb: Sandbox, obj: dict[str, Any], check: bool = True
               ) -> subprocess.CompletedProcess[str]:
    """What kustomize-controller does: a forced server-side apply as its field manager."""
    return sb.kubectl("apply", "--server-side", "--force-conflicts",
                      "--field-manager=kustomize-controller", "-f", "-",
                      input=json.dumps(obj), check=check)


def get(sb: Sandbox, resource: str, ns: str, name: str = "my-app") -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        sb.kubectl("get", resource, name, "-n", ns, "-o", "json").stdout)
    return result


def notes(obj: dict[str, Any]) -> dict[str, str]:
    result: dict[str, str] = obj["metadata"].get("annotations", {})
    return result


def report_deployed(sb: Sandbox, ns: str, version: str, name: str = "my-app") -> None:
    """What helm-controller writes after installing ``version``."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    snapshot = {"name": name, "namespace": ns, "version": 1, "status": "deployed",
                "chartName": "app", "chartVersion": version, "configDigest": "sha256:" + "0" * 64,
                "digest": "sha256:" + "1" * 64, "firstDeployed": now, "lastDeployed": now}
    sb.kubectl("patch", HR, name, "-n", ns, "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": {"history": [snapshot]}}))


def report_fetched(sb: Sandbox, ns: str, tag: str, name: str = "my-app") -> None:
    """What source-controller writes after fetching ``tag``."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    digest = "sha256:" + "2" * 64
    artifact = {"path": f"ocirepository/{ns}/{name}/x.tar.gz", "url": "http://x/x.tar.gz",
                "revision": f"{tag}@{digest}", "digest": digest, "lastUpdateTime": now}
    sb.kubectl("patch", OCI, name, "-n", ns, "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": {"artifact": artifact}}))


def held_release(gate: Gate, ns: str) -> dict[str, Any]:
    """A managed release deployed at 12.4.0 whose Git now says 12.5.0 (held)."""
    sb = gate.sandbox
    flux_apply(sb, helm_release(ns, "12.4.0"))
    report_deployed(sb, ns, "12.4.0")
    result = flux_apply(sb, helm_release(ns, "12.5.0"))
    assert "FluxUp holds my-app 12.5.0 until pre-upgrade snapshots are ready" in result.stderr
    return get(sb, HR, ns)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# --- the gate -------------------------------------------------------------------------


def test_changed_chart_version_is_held_and_stays_held(gate: Gate, ns: str) -> None:
    sb = gate.sandbox
    obj = held_release(gate, ns)
    assert obj["spec"]["chart"]["spec"]["version"] == "12.5.0"
    assert obj["spec"]["suspend"] is True
    held = notes(obj)[ann.HELD]
    assert json.loads(held) == {"chart": "12.5.0",
                                "source": f"chart:app@HelmRepository/{ns}/charts"}
    since = notes(obj)[ann.HELD_SINCE]

    for _ in range(3):  # Flux re-applies on every interval: the object stays as held, so
        # the re-apply is not even sent to the webhook (matchConditions) and the hold stays
        before = gate.requests("HelmRelease")
        flux_apply(sb, helm_release(ns, "12.5.0"))
        assert gate.requests("HelmRelease") == before
        again = get(sb, HR, ns)
        assert again["spec"]["suspend"] is True
        assert notes(again)[ann.HELD] == held
        assert notes(again)[ann.HELD_SINCE] == since


def test_manual_unsuspend_denied_then_allowed_with_bypass(gate: Gate, ns: str) -> None:
    sb = gate.sandbox
    held_release(gate, ns)
    denied = sb.kubectl("patch", HR, "my-app", "-n", ns, "--type=merge",
                        "-p", '{"spec":{"suspend":false}}', check=False)
    assert denied.returncode != 0
    assert "is held by FluxUp at 12.5.0" in denied.stderr
    assert 'fluxup.dev/bypass: "<reason>"' in denied.stderr
    assert get(sb, HR, ns)["spec"]["suspend"] is True

    bypass = {"metadata": {"annotations": {ann.BYPASS: "INC-42 restore service"}},
              "spec": {"suspend": False}}
    allowed = sb.kubectl("patch", HR, "my-app", "-n", ns, "--type=merge",
                         "-p", json.dumps(bypass))
    assert "gate bypassed" in allowed.stderr
    assert get(sb, HR, ns)["spec"]["suspend"] is False


def test_approval_by_operator_releases_and_later_applies_pass(gate: Gate, ns: str) -> None:
    sb = gate.sandbox
    held = notes(held_release(gate, ns))[ann.HELD]
    forged = sb.kubectl("annotate", HR, "my-app", "-n", ns,
                        f"{ann.APPROVED}={held}", check=False)
    assert forged.returncode != 0
    assert "only FluxUp" in forged.stderr

    # the operator approves exactly the held identity (chart source included) for one request
    approval = build_approval(held, f"UpgradeRequest/{ns}/my-app-12-5-0")
    sb.kubectl("annotate", HR, "my-app", "-n", ns, AS_OPERATOR, f"{ann.APPROVED}={approval}")
    approved = get(sb, HR, ns)
    assert ann.HELD not in notes(approved)
    sb.kubectl("patch", HR, "my-app", "-n", ns, AS_OPERATOR, "--type=merge",
               "-p", '{"spec":{"suspend":false}}')
    result = flux_apply(sb, helm_release(ns, "12.5.0"))
    assert "FluxUp holds" not in result.stderr
    final = get(sb, HR, ns)
    assert final["spec"].get("suspend") is False
    assert ann.HELD not in notes(final)


def test_only_operator_may_drop_the_managed_label(gate: Gate, ns: str) -> None:
    sb = gate.sandbox
    flux_apply(sb, helm_release(ns, "12.4.0"))
    denied = sb.kubectl("label", HR, "my-app", "-n", ns, f"{ann.MANAGED_APP_LABEL}-",
                        check=False)
    assert denied.returncode != 0
    assert "delete its ManagedApp" in denied.stderr
    sb.kubectl("label", HR, "my-app", "-n", ns, f"{ann.MANAGED_APP_LABEL}-", AS_OPERATOR)


def test_oci_repository_tag_change_holds_the_source(gate: Gate, ns: str) -> None:
    sb = gate.sandbox
    served = oci_repository(ns, {"tag": "1.0.0"})
    flux_apply(sb, served)
    report_fetched(sb, ns, "1.0.0")
    # what the operator records at rest: source-controller, which runs here, may drop the
    # hand-written artifact above (it never fetched it), and the gate must not then take
    # the tag change for a first install
    sb.kubectl("annotate", OCI, "my-app", "-n", ns, AS_OPERATOR, f"{ann.RELEASED}="
               + determine_desired(GatedKind.OCI_REPOSITORY, served).identity.to_json())
    flux_apply(sb, helm_release(ns, "", chart_ref=True))
    result = flux_apply(sb, oci_repository(ns, {"tag": "1.1.0"}))
    assert "FluxUp holds my-app 1.1.0" in result.stderr
    source = get(sb, OCI, ns)
    assert source["spec"]["suspend"] is True
    assert json.loads(notes(source)[ann.HELD])["chart"] == "1.1.0"
    assert json.loads(notes(source)[ann.HELD])["source"].startswith("oci:")
    release = get(sb, HR, ns)
    assert "suspend" not in release["spec"]  # the chart is gated on its source

    semver = flux_apply(sb, oci_repository(ns, {"semver": ">=1.0.0"}, name="floating"))
    assert "cannot gate" in semver.stderr
    assert "suspend" not in get(sb, OCI, ns, "floating")["spec"]


def test_image_tag_change_at_configured_path_is_held(gate: Gate, ns: str) -> None:
    sb = gate.sandbox
    flux_apply(sb, helm_release(ns, "12.4.0", values={"image": {"tag": "1.0"}}))
    report_deployed(sb, ns, "12.4.0")
    sb.kubectl("annotate", HR, "my-app", "-n", ns, AS_OPERATOR,
               f'{ann.IMAGE_PATHS}=["image.tag"]',
               f'{ann.RELEASED}={{"chart":"12.4.0","images":{{"image.tag":"1.0"}}}}')
    unchanged = flux_apply(sb, helm_release(ns, "12.4.0", values={"image": {"tag": "1.0"}}))
    assert "FluxUp holds" not in unchanged.stderr
    result = flux_apply(sb, helm_release(ns, "12.4.0", values={"image": {"tag": "1.1"}}))
    assert "FluxUp holds my-app 12.4.0 (image.tag=1.1)" in result.stderr
    obj = get(sb, HR, ns)
    assert obj["spec"]["suspend"] is True
    held = json.loads(notes(obj)[ann.HELD])
    assert (held["chart"], held["images"]) == ("12.4.0", {"image.tag": "1.1"})
    # the image's repository/registry/digest beside the tag are part of what is held
    assert set(held["extras"]) == {"image.repository", "image.registry", "image.digest"}


def test_version_range_passes(gate: Gate, ns: str) -> None:
    sb = gate.sandbox
    flux_apply(sb, helm_release(ns, "12.4.0"))
    report_deployed(sb, ns, "12.4.0")
    result = flux_apply(sb, helm_release(ns, "12.x"))
    assert "cannot gate my-app per version" in result.stderr
    assert "suspend" not in get(sb, HR, ns)["spec"]


def test_unmanaged_releases_never_reach_the_webhook(gate: Gate, ns: str) -> None:
    sb = gate.sandbox
    before = gate.requests("HelmRelease")
    flux_apply(sb, helm_release(ns, "1.0.0", name="plain", managed=False))
    report_deployed(sb, ns, "1.0.0", name="plain")
    flux_apply(sb, helm_release(ns, "2.0.0", name="plain", managed=False))
    assert "suspend" not in get(sb, HR, ns, "plain")["spec"]
    assert gate.requests("HelmRelease") == before
    flux_apply(sb, helm_release(ns, "1.0.0"))  # a managed one does reach it
    assert gate.requests("HelmRelease") > before


def test_fluxup_objects_are_validated(gate: Gate, ns: str, fluxup_crds: list[Path]) -> None:
    sb = gate.sandbox
    app: dict[str, Any] = {"apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
                           "metadata": {"name": "my-app", "namespace": ns},
                           "spec": {"helmReleaseRef": {"name": "my-app",
                                                       "namespace": "elsewhere"}}}
    denied = sb.kubectl("apply", "-f", "-", input=json.dumps(app), check=False)
    assert denied.returncode != 0
    assert "allow_cross_namespace_refs" in denied.stderr
    app["spec"]["helmReleaseRef"] = {"name": "my-app"}
    sb.kubectl("apply", "-f", "-", input=json.dumps(app))


def test_certificate_rotation_during_a_stream_of_updates(gate: Gate, ns: str) -> None:
    sb, webhook = gate.sandbox, gate.webhook
    flux_apply(sb, helm_release(ns, "12.4.0"))
    report_deployed(sb, ns, "12.4.0")
    done = threading.Event()
    failures: list[str] = []
    updates = 0

    def stream() -> None:
        nonlocal updates
        while not done.is_set():
            result = sb.kubectl("annotate", "--overwrite", HR, "my-app", "-n", ns,
                                f"example.com/tick={updates}", check=False)
            if result.returncode != 0:
                failures.append(result.stderr)
            updates += 1

    worker = threading.Thread(target=stream)
    worker.start()
    try:
        for _ in range(3):
            previous = webhook.served_serial()
            ensure_cert_files(webhook.cert_dir, ["127.0.0.1", "localhost"], renew=True)

            def rotated(previous: int = previous) -> bool:
                return webhook.served_serial() != previous

            wait_for(rotated, what="the webhook to serve the rotated certificate")
            start = updates

            def progressed(start: int = start) -> bool:
                return updates >= start + 3

            wait_for(progressed, what="updates after rotation")
    finally:
        done.set()
        worker.join()
    assert failures == []
    assert updates >= 9


def test_with_the_webhook_down_managed_changes_fail_unmanaged_pass(gate: Gate, ns: str) -> None:
    sb = gate.sandbox
    flux_apply(sb, helm_release(ns, "12.4.0"))
    flux_apply(sb, helm_release(ns, "1.0.0", name="plain", managed=False))
    gate.webhook.stop()
    try:
        failed = flux_apply(sb, helm_release(ns, "12.5.0"), check=False)
        assert failed.returncode != 0
        assert "failed calling webhook" in failed.stderr
        assert get(sb, HR, ns)["spec"]["chart"]["spec"]["version"] == "12.4.0"
        flux_apply(sb, helm_release(ns, "2.0.0", name="plain", managed=False))
        assert get(sb, HR, ns, "plain")["spec"]["chart"]["spec"]["version"] == "2.0.0"
    finally:
        gate.webhook.start()


# --- issue 8: approvals, bypasses and Flux's applies ------------------------------------


def test_an_approval_bound_to_no_request_approves_nothing(gate: Gate, ns: str) -> None:
    sb = gate.sandbox
    held = notes(held_release(gate, ns))[ann.HELD]
    # a bare identity (as written before approvals were bound to a request): the gate
    # reviews it (an approval would drop fluxup.dev/held) and keeps the hold
    before = gate.requests("HelmRelease")
    result = sb.kubectl("annotate", HR, "my-app", "-n", ns, AS_OPERATOR,
                        f"{ann.APPROVED}={held}")
    assert "FluxUp holds my-app 12.5.0" in result.stderr
    assert gate.requests("HelmRelease") == before + 2
    obj = get(sb, HR, ns)
    assert obj["spec"]["suspend"] is True
    assert notes(obj)[ann.HELD] == held


def test_a_git_manifest_saying_suspend_false_is_held_not_denied(gate: Gate, ns: str) -> None:
    sb = gate.sandbox
    held_release(gate, ns)
    manifest = helm_release(ns, "12.5.0")
    manifest["spec"]["suspend"] = False
    for _ in range(2):  # every Flux apply during the hold succeeds and stays held
        result = flux_apply(sb, manifest)
        assert result.returncode == 0
        assert "FluxUp holds my-app 12.5.0" in result.stderr
        assert get(sb, HR, ns)["spec"]["suspend"] is True
    denied = sb.kubectl("patch", HR, "my-app", "-n", ns, "--type=merge",
                        "-p", '{"spec":{"suspend":false}}', check=False)
    assert denied.returncode != 0  # a person's un-suspend is still refused
    assert "is held by FluxUp at 12.5.0" in denied.stderr


def test_a_bypass_left_on_the_release_holds_the_next_version(gate: Gate, ns: str) -> None:
    sb = gate.sandbox
    held_release(gate, ns)
    bypass = {"metadata": {"annotations": {ann.BYPASS: "INC-42 restore service"}},
              "spec": {"suspend": False}}
    sb.kubectl("patch", HR, "my-app", "-n", ns, "--type=merge", "-p", json.dumps(bypass))
    bound = json.loads(notes(get(sb, HR, ns))[ann.BYPASSED])
    assert (bound["identity"]["chart"], bound["used"]) == ("12.5.0", True)
    # Flux applies the next version; the bypass is still on the object
    result = flux_apply(sb, helm_release(ns, "12.6.0"))
    assert "FluxUp holds my-app 12.6.0" in result.stderr
    assert "covers only 12.5.0, not 12.6.0" in result.stderr
    obj = get(sb, HR, ns)
    assert obj["spec"]["suspend"] is True
    assert json.loads(notes(obj)[ann.BYPASSED]) == bound
    denied = sb.kubectl("patch", HR, "my-app", "-n", ns, "--type=merge",
                        "-p", '{"spec":{"suspend":false}}', check=False)
    assert denied.returncode != 0
    assert "is held by FluxUp at 12.6.0" in denied.stderr


# --- matchConditions: which updates reach the webhook -----------------------------------


def test_updates_that_leave_the_gates_inputs_alone_never_reach_the_webhook(
    gate: Gate, ns: str
) -> None:
    sb = gate.sandbox
    flux_apply(sb, helm_release(ns, "12.4.0"))
    report_deployed(sb, ns, "12.4.0")
    keep = '{"metadata":{"finalizers":["example.com/keep"]}}'
    untouched = [  # Flux's re-apply each interval, other tools' notes, finalizers
        lambda: flux_apply(sb, helm_release(ns, "12.4.0")),
        lambda: sb.kubectl("annotate", HR, "my-app", "-n", ns, "example.com/note=x"),
        lambda: sb.kubectl("label", HR, "my-app", "-n", ns, "team=storage"),
        lambda: sb.kubectl("patch", HR, "my-app", "-n", ns, "--type=merge", "-p", keep),
        lambda: sb.kubectl("patch", HR, "my-app", "-n", ns, "--type=merge",
                           "-p", '{"metadata":{"finalizers":null}}'),
    ]
    before = gate.requests("HelmRelease")
    for update in untouched:
        update()
    assert gate.requests("HelmRelease") == before

    # each change to an input of the gate reaches both webhooks (mutating, validating)
    changed = [
        lambda: flux_apply(sb, helm_release(ns, "12.4.0", values={"replicas": 2})),
        lambda: sb.kubectl("label", HR, "my-app", "-n", ns, "fluxup.dev/note=x"),
        lambda: sb.kubectl("label", HR, "my-app", "-n", ns, "fluxup.dev/note-"),
        lambda: sb.kubectl("annotate", HR, "my-app", "-n", ns, AS_OPERATOR,
                           f"{ann.UPGRADE_REQUEST}=my-app-12-5-0"),
        lambda: sb.kubectl("annotate", "--overwrite", HR, "my-app", "-n", ns, AS_OPERATOR,
                           f"{ann.UPGRADE_REQUEST}=my-app-12-6-0"),
        lambda: sb.kubectl("annotate", HR, "my-app", "-n", ns, AS_OPERATOR,
                           f"{ann.UPGRADE_REQUEST}-"),
    ]
    for update in changed:
        count = gate.requests("HelmRelease")
        update()
        assert gate.requests("HelmRelease") == count + 2
    # and what they guard is still refused
    forged = sb.kubectl("annotate", HR, "my-app", "-n", ns, f"{ann.APPROVED}=x", check=False)
    assert "only FluxUp" in forged.stderr
    dropped = sb.kubectl("label", HR, "my-app", "-n", ns, f"{ann.MANAGED_APP_LABEL}-",
                         check=False)
    assert "delete its ManagedApp" in dropped.stderr
    held = flux_apply(sb, helm_release(ns, "12.5.0"))
    assert "FluxUp holds my-app 12.5.0" in held.stderr
