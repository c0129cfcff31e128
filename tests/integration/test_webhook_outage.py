"""docs/operations.md's "If it cannot come back soon", run as written on the sandbox.

The webhook is down, so with ``failurePolicy: Fail`` every change to a managed release is
refused. The documented break-glass procedure stops helm-controller, opens the gate
(``failurePolicy: Ignore``, patched by the JSON Patch the docs print), lets an urgent
change through, closes the gate and starts helm-controller again. The promise must hold
across it: the version pushed while the gate was open is caught by line 2 (Helm's release
record) once helm-controller runs again, and is installed only after ReadyToUse snapshots
were taken for it.

The file name sorts after test_crds.py on purpose: the session's first test that uses the
``stack`` fixture starts FluxUp's operator, which would then rewrite the status that
test_crds writes by hand.

On the sandbox the webhook and helm-controller are processes, not Deployments: "scale to
zero" is stopping the process and "scale to one" is starting it again with the same
command line and environment.
"""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fluxup.sandbox.controlplane import Sandbox, start_component
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.processes import is_ours, stop_process, wait_until
from fluxup.sandbox.seed import DemoApp
from fluxup.sandbox.stack import Stack
from tests.integration.test_release_record_e2e import _enrol_app, _snapshots_before_deploy
from tests.integration.test_upgrade_e2e import _bump, _get, _wait_request
from tests.test_operations_doc import documented_gate_patches

pytestmark = [pytest.mark.sandbox, pytest.mark.full]


def _with_policy(ops: list[dict[str, Any]], policy: str) -> list[dict[str, Any]]:
    return [{**op, "value": policy} for op in ops]


def _command_of(sb: Sandbox, name: str) -> tuple[list[str], dict[str, str], bool]:
    """The argv, environment and restart flag of sandbox process ``name`` (to start it
    again): its wrapper's command line is ``sh -c WRAPPER MARKER NAME DELAY ARGV...``."""
    pid = sb.pids[name]
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    environ = Path(f"/proc/{pid}/environ").read_bytes().rstrip(b"\0").split(b"\0")
    env = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    return [a.decode() for a in cmdline[6:]], env, cmdline[5] != b"no"


@contextmanager
def _stopped(sb: Sandbox, name: str) -> Iterator[None]:
    """Process ``name`` is stopped inside the block and runs again after it."""
    argv, env, restart = _command_of(sb, name)
    pid = sb.pids.pop(name)
    assert stop_process(pid, sb.token), f"{name} was not running"
    sb.save()
    try:
        yield
    finally:
        if name not in sb.pids or not is_ours(sb.pids[name], sb.token):
            start_component(sb, name, argv, io.StringIO(), env=env, restart=restart)


def _gate_check(stack: Stack, app: DemoApp) -> Any:
    """The docs' check that the gate answers: an operator-only annotation, dry run."""
    return stack.sandbox.kubectl(
        "-n", app.namespace, "annotate", "helmrelease", app.name,
        "fluxup.dev/approved=test", "--overwrite", "--dry-run=server", check=False)


def _patch_gate(stack: Stack, policy: str) -> None:
    names = {doc["kind"].lower(): doc["metadata"]["name"] for doc in stack.registered}
    for kind, ops in documented_gate_patches().items():
        stack.sandbox.kubectl("patch", kind, names[kind], "--type=json",
                              "-p", json.dumps(_with_policy(ops, policy)))


def test_break_glass_keeps_the_promise(stack: Stack, fleet: Fleet) -> None:
    sb = stack.sandbox
    app = DemoApp(f"glass-{secrets.token_hex(3)}", f"glass-{secrets.token_hex(3)}")
    fleet.add_app(app)
    fleet.wait_released(app, app.chart_version)
    _enrol_app(stack, app)  # the docs: every ManagedApp's Gated condition True first
    gated = {c["type"]: c for c in _get(sb, "managedapp", app.namespace, app.name)
             ["status"]["conditions"]}["Gated"]
    assert gated["status"] == "True", gated

    with _stopped(sb, "fluxup-webhook"):
        refused = _gate_check(stack, app)
        assert refused.returncode != 0
        assert "fluxup.dev" in refused.stderr  # the error names the webhook that is down
        with _stopped(sb, "helm-controller"):
            _patch_gate(stack, "Ignore")
            try:
                _bump(fleet, app, "1.1.0")  # the urgent change, applied with the gate open
                wait_until("Flux to apply 1.1.0 past the open gate", lambda: (
                    (_get(sb, "helmrelease", app.namespace, app.name) or {})
                    .get("spec", {}).get("chart", {}).get("spec", {})
                    .get("version") == "1.1.0"), 120)
                hr = _get(sb, "helmrelease", app.namespace, app.name)
                assert not hr["spec"].get("suspend")  # line 1 was not there to hold it
            finally:
                _patch_gate(stack, "Fail")
    wait_until("the webhook to answer again", lambda: _gate_check(stack, app).returncode != 0
               and "only FluxUp" in _gate_check(stack, app).stderr, 60)
    assert "only FluxUp" in _gate_check(stack, app).stderr

    # helm-controller runs again: line 2 holds the revision until its snapshots are ready
    request = _wait_request(stack, app, "Succeeded", timeout=400)
    assert request["spec"]["origin"] == "git"  # caught by line 2 (or line 1's next apply)
    hr = _get(sb, "helmrelease", app.namespace, app.name)
    assert hr["status"]["history"][0]["chartVersion"] == "1.1.0"
    _snapshots_before_deploy(stack, app, request)
    for kind, name in ((d["kind"].lower(), d["metadata"]["name"]) for d in stack.registered):
        policies = {w["failurePolicy"] for w in sb.get_json(kind, name)["webhooks"]}
        assert policies == {"Fail"}, (kind, policies)
