"""The shipped RBAC is least privilege: no wildcard anywhere, no privilege-escalation
verbs, and every Kubernetes call the operator's code makes is granted.

The calls are found statically: every ``<kube>.get/find/list/create/merge_patch/apply/
delete(R.<RESOURCE>, ..., sub=...)`` in ``fluxup/`` (outside the sandbox tooling) becomes
the (API group, resource[/subresource], verb) it needs, and the operator's ClusterRole
must grant each. The least-privilege end-to-end run (the sandbox operator acts through
its ServiceAccount with exactly this ClusterRole) proves the calls made through
variables as well.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxup.adapters.kube import R, Resource

REPO = Path(__file__).resolve().parents[1]
VERBS = {"get": "get", "find": "get", "list": "list", "create": "create",
         "merge_patch": "patch", "apply": "patch", "delete": "delete"}
FORBIDDEN_VERBS = {"*", "escalate", "bind"}


def rbac_documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted((REPO / "manifests").rglob("*.yaml")):
        if "chart" in path.parts:  # the chart's copies: tests/test_chart.py keeps them equal
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in ("Role", "ClusterRole"):
                docs.append((path, doc))
    return docs


def test_rbac_is_shipped() -> None:
    names = {doc["metadata"]["name"] for _, doc in rbac_documents()}
    assert {"fluxup-operator", "fluxup-webhook", "fluxup-webhook-certs"} <= names


@pytest.mark.parametrize(("path", "doc"), rbac_documents(),
                         ids=lambda v: v.name if isinstance(v, Path) else v["metadata"]["name"])
def test_no_wildcards_or_escalation(path: Path, doc: dict[str, Any]) -> None:
    for rule in doc.get("rules") or []:
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            values = rule.get(field) or []
            assert not any("*" in v for v in values), f"{path}: wildcard in {field}: {rule}"
        assert not FORBIDDEN_VERBS & set(rule.get("verbs") or []), f"{path}: {rule}"
        assert "nonResourceURLs" not in rule, f"{path}: {rule}"


def granted(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    out = set()
    for rule in role["rules"]:
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    out.add((group, resource, verb))
    return out


def calls_in_code() -> set[tuple[str, str, str, str]]:
    """(group, resource, verb, where) of every statically visible Kubernetes call."""
    found = set()
    for path in sorted((REPO / "fluxup").rglob("*.py")):
        if "sandbox" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in VERBS and node.args):
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Attribute) and isinstance(first.value, ast.Name)
                    and first.value.id == "R"):
                continue
            res: Resource = getattr(R, first.attr)
            plural = res.plural
            for kw in node.keywords:
                if kw.arg == "sub" and isinstance(kw.value, ast.Constant) and kw.value.value:
                    plural = f"{plural}/{kw.value.value}"
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            found.add((res.group, plural, VERBS[node.func.attr], where))
    return found


def test_every_call_of_the_operator_is_granted() -> None:
    # the ClusterRole, plus the Role in FluxUp's own namespace (report ConfigMaps)
    grants: set[tuple[str, str, str]] = set()
    for _, doc in rbac_documents():
        if doc["metadata"]["name"] == "fluxup-operator":
            grants |= granted(doc)
    calls = calls_in_code()
    assert len(calls) > 20  # the scan finds the reconcilers' calls
    missing = sorted(c for c in calls if c[:3] not in grants)
    assert not missing, "the operator's ClusterRole lacks: " + "; ".join(
        f"{verb} {group or 'core'}/{resource} ({where})"
        for group, resource, verb, where in missing)


def test_missing_permission_is_detected() -> None:
    """The check above can fail: drop one rule and a call becomes ungranted."""
    operator = next(doc for _, doc in rbac_documents()
                    if doc["metadata"]["name"] == "fluxup-operator")
    rules = [r for r in operator["rules"] if "volumesnapshots" not in r["resources"]]
    grants = granted({"rules": rules})
    assert any(c[1] == "volumesnapshots" and c[:3] not in grants for c in calls_in_code())
