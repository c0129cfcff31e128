"""FluxUp's Helm chart rendered by a real Helm CLI and accepted by a real apiserver.

Helm is built from its published Go module like the sandbox's other components
(``fluxup sandbox build helm``, run by ``make test``). Each rendering is checked for
what an installer relies on: the pieces that exist, the settings the Python code reads,
the refusals of incomplete values, and a server-side dry run against the sandbox's
apiserver with FluxUp's and Flux's CRDs installed.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxup.sandbox import gobuild
from fluxup.sandbox.components import component
from fluxup.sandbox.controlplane import Sandbox

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "manifests" / "chart"
OIDC = ["--set", "ui.enabled=true", "--set", "ui.oidc.enabled=true",
        "--set", "ui.oidc.issuerUrl=https://idp.example", "--set",
        "ui.oidc.existingSecret=fluxup-oidc", "--set", "ui.publicUrl=https://fluxup.example"]


@pytest.fixture(scope="module")
def helm() -> Path:
    return gobuild.ensure_built(component("helm")) / "helm"


def _helm(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(helm), *args], capture_output=True, text=True, check=False,
                          env={"HOME": "/nonexistent", "PATH": "/usr/bin:/bin"})
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def _render(helm: Path, *values: str) -> list[dict[str, Any]]:
    out = _helm(helm, "template", "fluxup", str(CHART), "--namespace", "fluxup-system",
                "--include-crds", *values).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _by_kind(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def _python_settings() -> set[str]:
    names: set[str] = set()
    for path in (REPO / "fluxup").rglob("*.py"):
        names |= set(re.findall(r'"(FLUXUP_[A-Z_]+)"', path.read_text()))
    return names


def test_lint_passes(helm: Path) -> None:
    proc = _helm(helm, "lint", "--strict", str(CHART), *OIDC)
    assert "0 chart(s) failed" in proc.stdout


def test_defaults_render_operator_webhook_and_crds(helm: Path) -> None:
    objects = _by_kind(_render(helm))
    operator = objects[("Deployment", "fluxup-operator")]
    assert operator["spec"]["strategy"]["type"] == "Recreate"
    assert operator["spec"]["replicas"] == 1
    assert objects[("Deployment", "fluxup-webhook")]["spec"]["replicas"] >= 2
    assert ("PodDisruptionBudget", "fluxup-webhook") in objects
    crds = {name for kind, name in objects if kind == "CustomResourceDefinition"}
    assert crds == {"managedapps.fluxup.dev", "upgraderequests.fluxup.dev",
                    "rollbackrequests.fluxup.dev"}
    assert {kind for kind, _ in objects} >= {
        "ClusterRole", "ClusterRoleBinding", "ServiceAccount", "Service",
        "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
    (job_name,) = [n for k, n in objects if k == "Job" and n.startswith("fluxup-webhook-certs-")]
    job = objects[("Job", job_name)]["spec"]["template"]["spec"]
    cron = objects[("CronJob", "fluxup-webhook-certs")]["spec"]["jobTemplate"]["spec"]
    assert job["containers"] == cron["template"]["spec"]["containers"]
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert operator["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_every_setting_the_chart_sets_is_one_fluxup_reads(helm: Path) -> None:
    known = _python_settings()
    for doc in _render(helm, *OIDC):
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                if env["name"].startswith("FLUXUP_"):
                    assert env["name"] in known, (doc["metadata"]["name"], env["name"])


def test_ui_without_oidc_is_refused_with_a_clear_message(helm: Path) -> None:
    proc = _helm(helm, "template", "fluxup", str(CHART), "--set", "ui.enabled=true",
                 check=False)
    assert proc.returncode != 0
    assert "ui.enabled needs ui.oidc.enabled" in proc.stderr
    proc = _helm(helm, "template", "fluxup", str(CHART), *OIDC[:4], check=False)
    assert proc.returncode != 0
    assert "ui.oidc.issuerUrl is required" in proc.stderr


REPORTS = ["--set", "reports.endpoint.enabled=true", "--set",
           "reports.endpoint.audiences={fluxup,ci}", "--set",
           "reports.configMapIntervalSeconds=15"]


def test_report_endpoint_renders_settings_certificate_port_and_policy(helm: Path) -> None:
    off = _by_kind(_render(helm))
    env = {e["name"]: e.get("value") for e in off[("Deployment", "fluxup-operator")][
        "spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "FLUXUP_REPORT_ADDRESS" not in env
    assert env["FLUXUP_REPORT_CONFIGMAP_INTERVAL_SECONDS"] == "30"
    objects = _by_kind(_render(helm, *REPORTS))
    pod = objects[("Deployment", "fluxup-operator")]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FLUXUP_REPORT_ADDRESS"] == "0.0.0.0:8443"
    assert env["FLUXUP_REPORT_AUDIENCES"] == "fluxup,ci"
    assert env["FLUXUP_REPORT_CONFIGMAP_INTERVAL_SECONDS"] == "15"
    assert {n for n in env if n.startswith("FLUXUP_REPORT")} <= _python_settings()
    mount = next(m for m in container["volumeMounts"] if m["name"] == "report-tls")
    assert env["FLUXUP_REPORT_CERT_FILE"].startswith(mount["mountPath"] + "/")
    volume = next(v for v in pod["volumes"] if v["name"] == "report-tls")
    assert volume["secret"]["secretName"] == "fluxup-report-tls"
    assert {"name": "reports", "containerPort": 8443} in container["ports"]
    service = objects[("Service", "fluxup-operator")]
    assert {"name": "reports", "port": 8443, "targetPort": "reports"} in (
        service["spec"]["ports"])
    policy = objects[("NetworkPolicy", "fluxup-operator")]
    assert any({"port": 8443, "protocol": "TCP"} in rule["ports"]
               for rule in policy["spec"]["ingress"])
    sender = objects[("ClusterRole", "fluxup-report-sender")]
    assert sender["rules"] == [{"apiGroups": ["fluxup.dev"],
                                "resources": ["managedapps/report"], "verbs": ["create"]}]


def test_chart_is_accepted_by_the_apiserver(
    helm: Path, sandbox: Sandbox, fluxup_crds: list[Path]
) -> None:
    docs = [d for d in _render(helm, *OIDC, *REPORTS)
            if d["kind"] not in ("CustomResourceDefinition", "ServiceMonitor", "PrometheusRule")]
    sandbox.kubectl("create", "namespace", "fluxup-system", check=False)
    out = sandbox.kubectl(
        "apply", "--dry-run=server", "--server-side", "--force-conflicts",
        "--field-manager=fluxup-chart-test", "-f", "-", "-o", "json",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
    ).stdout
    applied = json.loads(out)
    kinds = {i["kind"] for i in applied.get("items", [applied])}
    assert {"Deployment", "ClusterRole", "ValidatingWebhookConfiguration"} <= kinds


def test_service_monitors_scrape_the_operator_and_the_webhook_over_tls(helm: Path) -> None:
    docs = _by_kind(_render(helm, "--set", "metrics.serviceMonitor.enabled=true"))
    operator = docs[("ServiceMonitor", "fluxup")]["spec"]
    assert operator["selector"]["matchLabels"] == {"app.kubernetes.io/name": "fluxup-operator"}
    webhook = docs[("ServiceMonitor", "fluxup-webhook")]["spec"]
    assert webhook["selector"]["matchLabels"] == {"app.kubernetes.io/name": "fluxup-webhook"}
    (endpoint,) = webhook["endpoints"]
    service = docs[("Service", "fluxup-webhook")]["spec"]
    assert endpoint["port"] in {p["name"] for p in service["ports"]}
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"]["serverName"] == "fluxup-webhook.fluxup-system.svc"
    assert endpoint["tlsConfig"]["ca"]["secret"] == {"name": "fluxup-webhook-tls",
                                                     "key": "ca.crt"}


def test_a_changed_certificate_pod_is_a_new_job_not_an_immutable_edit(helm: Path) -> None:
    """An upgrade of FluxUp that changes the certificate Job's pod template (a new image)
    must not patch the old Job (its template is immutable): the Job's name follows it."""
    def job_names(*values: str) -> set[str]:
        return {d["metadata"]["name"] for d in _render(helm, *values) if d["kind"] == "Job"}

    (same,) = job_names()
    assert job_names() == {same}  # stable while nothing changes
    assert job_names("--set", "image.tag=9.9.9") != {same}


def test_cert_manager_signs_the_serving_certificate_with_a_private_ca(helm: Path) -> None:
    """The webhook configurations trust a CA, not the serving certificate itself: a
    renewal of the serving certificate is trusted at once (no window of refusals)."""
    docs = _by_kind(_render(helm, "--set", "certManager.enabled=true"))
    ca = docs[("Certificate", "fluxup-webhook-ca")]["spec"]
    assert ca["isCA"] is True
    assert ca["issuerRef"]["name"] == "fluxup-selfsigned"
    assert docs[("Issuer", "fluxup-webhook-ca")]["spec"] == {
        "ca": {"secretName": ca["secretName"]}}
    serving = docs[("Certificate", "fluxup-webhook")]["spec"]
    assert serving["issuerRef"] == {"name": "fluxup-webhook-ca", "kind": "Issuer"}
    assert serving["secretName"] == "fluxup-webhook-tls"
    assert not any(kind == "Job" for kind, _ in docs)  # FluxUp's own certificate Job is off
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        (conf,) = [d for (k, _), d in docs.items() if k == kind]
        assert conf["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
            "fluxup-system/fluxup-webhook")
