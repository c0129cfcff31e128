"""``fluxup certs ensure`` against the sandbox API server: Secret and caBundle converge."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from certs.bundle import parse_secret_data, split_pem
from certs.commands import certs_ensure, ensure_certs
from fluxup.errors import CertificateError
from fluxup.sandbox.controlplane import Sandbox

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def configs(sandbox: Sandbox) -> Iterator[str]:
    """FluxUp's webhook configurations under a unique name, selecting nothing."""
    name = f"fluxup-gate-certs-{secrets.token_hex(3)}"
    docs: list[dict[str, Any]] = list(yaml.safe_load_all(
        (REPO / "manifests/webhook/core/webhookconfigurations.yaml").read_text()))
    items = []
    for doc in docs:
        doc = copy.deepcopy(doc)
        doc["metadata"]["name"] = name
        for webhook in doc["webhooks"]:
            webhook["namespaceSelector"] = {"matchLabels": {"fluxup.dev/none": name}}
        items.append(doc)
    payload = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    sandbox.kubectl("apply", "-f", "-", input=payload)
    yield name
    sandbox.kubectl("delete", "-f", "-", "--ignore-not-found", input=payload, check=False)


def _ca_bundles(sandbox: Sandbox, name: str) -> set[str]:
    bundles = set()
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        doc = json.loads(sandbox.kubectl("get", kind, name, "-o", "json").stdout)
        bundles |= {w["clientConfig"].get("caBundle", "") for w in doc["webhooks"]}
    return bundles


def _secret(sandbox: Sandbox, namespace: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(sandbox.kubectl(
        "get", "secret", "fluxup-webhook-tls", "-n", namespace, "-o", "json").stdout)
    return result


def test_ensure_creates_injects_and_then_changes_nothing(
    sandbox: Sandbox, namespace: str, configs: str
) -> None:
    summary = certs_ensure(namespace, "fluxup-webhook", "fluxup-webhook-tls", [configs],
                           kubeconfig=sandbox.kubeconfig)
    assert "issued and stored" in summary
    assert "PRIVATE" not in summary
    secret = _secret(sandbox, namespace)
    assert secret["type"] == "kubernetes.io/tls"
    bundle = parse_secret_data(secret["data"])
    assert bundle is not None
    assert _ca_bundles(sandbox, configs) == {base64.b64encode(bundle.trusted_cas).decode()}

    version = secret["metadata"]["resourceVersion"]
    again = certs_ensure(namespace, "fluxup-webhook", "fluxup-webhook-tls", [configs],
                         kubeconfig=sandbox.kubeconfig)
    assert "certificates are current" in again
    assert _secret(sandbox, namespace)["metadata"]["resourceVersion"] == version


async def test_ensure_renews_before_expiry_and_rotates_the_ca(
    sandbox: Sandbox, namespace: str, configs: str
) -> None:
    first = await ensure_certs(namespace, "fluxup-webhook", "fluxup-webhook-tls", [configs],
                               kubeconfig=sandbox.kubeconfig)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3400)
    second = await ensure_certs(namespace, "fluxup-webhook", "fluxup-webhook-tls", [configs],
                                kubeconfig=sandbox.kubeconfig, now=later)
    assert second.stored
    assert second.bundle.ca != first.bundle.ca
    assert split_pem(second.bundle.trusted_cas) == [second.bundle.ca.cert_pem,
                                                    first.bundle.ca.cert_pem]
    assert _ca_bundles(sandbox, configs) == {
        base64.b64encode(second.bundle.trusted_cas).decode()}


async def test_ensure_names_a_missing_configuration(sandbox: Sandbox, namespace: str) -> None:
    with pytest.raises(CertificateError, match="no Mutating- or ValidatingWebhookConfiguration"):
        await ensure_certs(namespace, "fluxup-webhook", "fluxup-webhook-tls",
                           ["does-not-exist"], kubeconfig=sandbox.kubeconfig)
