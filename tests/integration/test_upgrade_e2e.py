"""Gated upgrades end to end: real Flux, real snapshots, the real gate and operator.

Every test gets its own app and namespace in the sandbox fleet. The operator runs under
the shipped ClusterRole; the webhook is called by the apiserver over TLS.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

import pytest

from fluxup.logic import yamledit
from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.seed import DemoApp
from tests.fleet import Fleet
from tests.stack import Stack
from tests.waiting import wait_for

pytestmark = [pytest.mark.sandbox, pytest.mark.full]


def _get(sb: Sandbox, kind: str, ns: str, name: str | None = None,
         selector: str | None = None) -> Any:
    args = ["get", kind, "-n", ns, "-o", "json"]
    if name:
        args.insert(2, name)
    if selector:
        args += ["-l", selector]
    proc = sb.kubectl(*args, check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _managed_app(stack: Stack, fleet: Fleet, app: DemoApp, **spec: Any) -> dict[str, Any]:
    """Deploy ``app`` through Flux, enrol its namespace, create its ManagedApp; wait Ready."""
    fleet.add_app(app)
    fleet.wait_released(app, app.chart_version)
    stack.enrol(app.namespace)
    body = {"apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
            "metadata": {"name": app.name, "namespace": app.namespace},
            "spec": {"helmReleaseRef": {"name": app.name}, **spec}}
    stack.sandbox.kubectl("apply", "-f", "-", input=json.dumps(body))

    def ready() -> dict[str, Any] | None:
        obj = _get(stack.sandbox, "managedapp", app.namespace, app.name)
        conds = {c["type"]: c for c in (obj or {}).get("status", {}).get("conditions", [])}
        return obj if conds.get("Ready", {}).get("status") == "True" else None

    try:
        return wait_for(f"ManagedApp {app.name} Ready", ready, 120)
    except AssertionError:
        obj = _get(stack.sandbox, "managedapp", app.namespace, app.name)
        raise AssertionError(f"{json.dumps((obj or {}).get('status'), indent=1)}\n"
                             f"{stack.operator.log_tail()}") from None


def _wait_request(stack: Stack, app: DemoApp, phase: str, timeout: float = 300,
                  name: str | None = None) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        if name:
            items = [_get(stack.sandbox, "upgraderequest", app.namespace, name) or {}]
        else:
            items = (_get(stack.sandbox, "upgraderequest", app.namespace) or {}).get("items", [])
        done = [r for r in items if (r.get("status") or {}).get("phase") in
                ("Succeeded", "Failed")]
        return done[0] if done else None

    try:
        request = wait_for(f"an UpgradeRequest of {app.name} to finish", probe, timeout, 1)
    except AssertionError:
        items = _get(stack.sandbox, "upgraderequest", app.namespace)
        raise AssertionError(f"{json.dumps(items, indent=1)[-3000:]}\n"
                             f"{stack.operator.log_tail()}") from None
    assert request["status"]["phase"] == phase, json.dumps(request["status"], indent=1)
    return request


def _bump(fleet: Fleet, app: DemoApp, version: str) -> str:
    path = f"flux/apps/{app.name}/helmrelease.yaml"
    text = fleet.read(path)
    head = fleet.commit({path: yamledit.edit_chart_version(text, name=app.name,
                                                           version=version)},
                        f"manual bump of {app.name} to {version}")
    fleet.sync(app.name)
    return head


def test_git_push_is_held_snapshotted_and_released(stack: Stack, fleet: Fleet) -> None:
    sb = stack.sandbox
    app = DemoApp(f"push-{secrets.token_hex(3)}", f"push-{secrets.token_hex(3)}")
    managed = _managed_app(stack, fleet, app)
    pvcs = [p["name"] for p in managed["status"]["pvcs"]]
    assert len(pvcs) == 2, managed["status"]  # the StatefulSet's claim and the Deployment's PVC
    _bump(fleet, app, "1.1.0")
    request = _wait_request(stack, app, "Succeeded")
    assert request["spec"]["origin"] == "git"
    snaps = request["status"]["snapshots"]
    assert sorted(s["pvc"] for s in snaps) == sorted(pvcs)
    assert all(s["readyToUse"] for s in snaps)
    objects = _get(sb, "volumesnapshot", app.namespace,
                   selector=f"fluxup.dev/upgrade-request={request['metadata']['name']}")["items"]
    assert len(objects) == len(pvcs)
    for snap in objects:
        labels = snap["metadata"]["labels"]
        assert labels["fluxup.dev/managed-app"] == app.name
        assert labels["fluxup.dev/protects-version"] == "1.1.0"
        assert not any(k.startswith("kustomize.toolkit.fluxcd.io") for k in labels)
        assert snap["status"]["readyToUse"] is True
    hr = _get(sb, "helmrelease", app.namespace, app.name)
    history = hr["status"]["history"]
    assert history[0]["chartVersion"] == "1.1.0"
    # helm-controller never ran 1.1.0 before every snapshot was taken
    deployed_at = _time(history[0]["firstDeployed"])
    taken = max(_time(s["status"]["creationTime"]) for s in objects)
    assert taken <= deployed_at, (taken, deployed_at)
    assert hr["spec"].get("suspend") in (None, False)
    released = json.loads(hr["metadata"]["annotations"]["fluxup.dev/released"])
    assert released["chart"] == "1.1.0"
