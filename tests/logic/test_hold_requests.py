"""Which UpgradeRequest handles a hold: one in flight, one that ended (FluxUp does not
start the same upgrade again by itself), or a new one with a deterministic name."""

from __future__ import annotations

from typing import Any

import pytest

from fluxup.logic.hold_requests import (
    HoldState,
    build_hold_request,
    build_hold_request_name,
    determine_hold_handling,
    request_targets_hold,
)
from fluxup.logic.identity import Identity

CHART = Identity(chart="1.1.0")
IMAGE = Identity(images=(("image.tag", "2.0"),))


def request(
    name: str, *, app: str = "web", version: str | None = None, images: Any = None,
    phase: str | None = None, resolved: str | None = None, deleting: bool = False,
    completed: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"managedAppRef": {"name": app}}
    if version:
        spec["targetVersion"] = version
    if images:
        spec["targetImages"] = [{"valuesPath": p, "tag": t} for p, t in images]
    status: dict[str, Any] = {}
    if phase:
        status["phase"] = phase
        status["message"] = f"{name} says {phase}"
    if resolved:
        status["targetIdentity"] = {"version": resolved}
    if completed:
        status["completedAt"] = completed
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": spec, "status": status}


@pytest.mark.parametrize(("req", "held", "is_oci", "targets"), [
    (request("a", version="1.1.0"), CHART, False, True),
    (request("a", version="v1.1.0"), CHART, False, True),
    (request("a", version="1.2.0"), CHART, False, False),
    (request("a", resolved="1.1.0"), CHART, False, True),  # resolved at preflight
    (request("a"), CHART, False, False),
    (request("a", images=[("image.tag", "2.0")]), IMAGE, False, True),
    (request("a", images=[("image.tag", "1.0")]), IMAGE, False, False),
    (request("a", images=[("image.tag", "2.0")]), IMAGE, True, False),  # an OCI hold is a chart
    (request("a"), Identity(), False, False),
])
def test_request_targets_hold(
    req: dict[str, Any], held: Identity, is_oci: bool, targets: bool
) -> None:
    assert request_targets_hold(req, held, is_oci) is targets


@pytest.mark.parametrize(("requests", "state", "name"), [
    pytest.param([], HoldState.MISSING, build_hold_request_name("web", CHART), id="none"),
    pytest.param([request("ui-1", version="1.1.0", phase="Snapshotting")],
                 HoldState.IN_FLIGHT, "ui-1", id="in-flight"),
    pytest.param([request("ui-1", version="1.1.0")], HoldState.IN_FLIGHT, "ui-1", id="new"),
    pytest.param([request("ui-1", version="1.2.0", phase="Snapshotting")],
                 HoldState.MISSING, build_hold_request_name("web", CHART), id="other-version"),
    pytest.param([request("x", app="db", version="1.1.0", phase="Pending")],
                 HoldState.MISSING, build_hold_request_name("web", CHART), id="other-app"),
    pytest.param([request("ui-1", version="1.1.0", phase="Failed")],
                 HoldState.ENDED, "ui-1", id="failed-after-commit"),
    pytest.param([request("ui-1", version="1.1.0", phase="Upgrading", deleting=True)],
                 HoldState.MISSING, build_hold_request_name("web", CHART), id="being-deleted"),
    pytest.param([request("ui-1", version="1.1.0", phase="Failed", completed="2026-01-01"),
                  request("ui-2", version="1.1.0", phase="Failed", completed="2026-01-02")],
                 HoldState.ENDED, "ui-2", id="latest-failure-named"),
    pytest.param([request("ui-1", version="1.1.0", phase="Failed"),
                  request("ui-2", version="1.1.0", phase="Queued")],
                 HoldState.IN_FLIGHT, "ui-2", id="retry-in-flight"),
    pytest.param([request("ui-1", version="1.1.0", phase="Succeeded")],
                 HoldState.MISSING, build_hold_request_name("web", CHART), id="succeeded-before"),
])
def test_hold_handling(requests: list[dict[str, Any]], state: HoldState, name: str) -> None:
    handling = determine_hold_handling(requests, "web", CHART, is_oci=False)
    assert (handling.state, handling.request) == (state, name)


def test_an_ended_request_is_named_with_what_to_do() -> None:
    handling = determine_hold_handling(
        [request("ui-1", version="1.1.0", phase="Failed")], "web", CHART, is_oci=False)
    assert "UpgradeRequest ui-1 for 1.1.0 failed (ui-1 says Failed)" in handling.message
    assert "create a new UpgradeRequest" in handling.message


def test_hold_request_names_are_deterministic_and_short() -> None:
    long = "a" * 80
    assert build_hold_request_name("web", CHART) == build_hold_request_name("web", CHART)
    assert build_hold_request_name("web", CHART) != build_hold_request_name("web", IMAGE)
    assert len(build_hold_request_name(long, CHART)) <= 63


def test_hold_request_body() -> None:
    body = build_hold_request("web", "apps", Identity(chart="1.1.0", images=(("image.tag", "2"),
                                                                             ("x.tag", None))))
    assert body["metadata"]["namespace"] == "apps"
    assert body["metadata"]["labels"] == {"fluxup.dev/managed-app": "web"}
    assert body["spec"] == {"managedAppRef": {"name": "web"}, "origin": "git",
                            "targetVersion": "1.1.0",
                            "targetImages": [{"valuesPath": "image.tag", "tag": "2"}]}


CANCELLED = {"upgradeRequest": "ui-1", "phase": "Failed", "toVersion": "1.1.0",
             "completedAt": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize(("requests", "last", "state"), [
    pytest.param([], CANCELLED, HoldState.ENDED, id="deleted-in-flight"),
    pytest.param([], {**CANCELLED, "toVersion": "1.2.0"}, HoldState.MISSING, id="other-version"),
    pytest.param([], {**CANCELLED, "phase": "Succeeded"}, HoldState.MISSING, id="succeeded"),
    pytest.param([request("ui-2", version="1.1.0", phase="Pending")], CANCELLED,
                 HoldState.IN_FLIGHT, id="retried"),
])
def test_a_request_deleted_in_flight_is_not_rerun(
    requests: list[dict[str, Any]], last: dict[str, Any], state: HoldState
) -> None:
    handling = determine_hold_handling(requests, "web", CHART, is_oci=False, last_upgrade=last)
    assert handling.state is state
    if state is HoldState.ENDED:
        assert "ui-1 for 1.1.0 was deleted before it finished" in handling.message
