"""docs/operations.md's break-glass commands match the shipped webhook configurations
(the sandbox test ``tests/integration/test_webhook_outage.py`` runs them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
OPERATIONS = REPO / "docs" / "operations.md"


def documented_gate_patches() -> dict[str, list[dict[str, Any]]]:
    """The JSON Patches docs/operations.md prints to open the gate, by configuration kind."""
    text = OPERATIONS.read_text()
    section = text[text.index("### If it cannot come back soon"):]
    section = section[:section.index("# ... the urgent change")]
    patches: dict[str, list[dict[str, Any]]] = {}
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        start = section.index(f"kubectl patch {kind} fluxup-gate --type=json")
        body = section[start:].split("-p '", 1)[1].split("'", 1)[0]
        patches[kind] = json.loads(body)
    return patches


def test_the_documented_patches_name_every_webhook() -> None:
    """Each webhook of the shipped configurations is opened (and so closed) by the docs."""
    shipped = {doc["kind"].lower(): len(doc["webhooks"]) for doc in yaml.safe_load_all(
        (REPO / "manifests/webhook/core/webhookconfigurations.yaml").read_text()) if doc}
    patches = documented_gate_patches()
    assert set(patches) == set(shipped)
    for kind, ops in patches.items():
        assert sorted(op["path"] for op in ops) == [
            f"/webhooks/{i}/failurePolicy" for i in range(shipped[kind])], kind
        assert {op["op"] for op in ops} == {"replace"}
        assert {op["value"] for op in ops} == {"Ignore"}
