"""The shipped kustomize base renders and is accepted by a real apiserver (server dry-run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluxup.sandbox.controlplane import Sandbox

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parents[2]


def test_base_renders_every_piece(sandbox: Sandbox) -> None:
    rendered = sandbox.kubectl("kustomize", str(REPO / "manifests/base")).stdout
    kinds = {line.split(":", 1)[1].strip() for line in rendered.splitlines()
             if line.startswith("kind:")}
    assert {"Namespace", "CustomResourceDefinition", "Deployment", "ClusterRole",
            "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
            "PodDisruptionBudget", "Service", "ServiceAccount"} <= kinds


def test_base_is_accepted_by_the_apiserver(sandbox: Sandbox, fluxup_crds: list[Path]) -> None:
    sandbox.kubectl("apply", "--server-side", "-f", str(REPO / "manifests/base/namespace.yaml"))
    out = sandbox.kubectl("apply", "--dry-run=server", "--server-side", "--force-conflicts",
                          "--field-manager=fluxup-test", "-k", str(REPO / "manifests/base"),
                          "-o", "json").stdout
    applied = json.loads(out)
    items = applied.get("items", [applied])
    deployments = {i["metadata"]["name"]: i for i in items if i["kind"] == "Deployment"}
    assert deployments["fluxup-operator"]["spec"]["strategy"]["type"] == "Recreate"
    assert deployments["fluxup-operator"]["spec"]["replicas"] == 1
    assert deployments["fluxup-webhook"]["spec"]["replicas"] >= 2
