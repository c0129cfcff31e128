"""Requests the UI creates, their validation, snapshot sets and the data-loss warning."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from fluxup.api.rollbackrequest import RollbackRequest
from fluxup.api.upgraderequest import UpgradeRequest
from fluxup.errors import ConfigError
from fluxup.logic.operations import (
    build_data_loss_warning,
    build_rollback_request,
    build_snapshot_sets,
    build_upgrade_request,
    parse_upgrade_input,
)


def test_upgrade_request_round_trips_through_the_model() -> None:
    wanted = parse_upgrade_input({"version": "1.2.3", "images": {"image.tag": "v2@sha256:ab"}})
    body = build_upgrade_request("apps", "web", wanted, "oidc:alice")
    body["metadata"]["name"] = "x"
    parsed = UpgradeRequest.from_dict(body)
    assert parsed.spec.target_version == "1.2.3"
    assert parsed.spec.target_images[0].values_path == "image.tag"
    assert parsed.spec.origin.value == "ui"
    assert parsed.spec.dry_run is False
    assert parsed.metadata.annotations["fluxup.dev/requested-by"] == "oidc:alice"
    assert body["metadata"]["generateName"] == "web-ui-"


def test_preview_is_a_dry_run() -> None:
    body = build_upgrade_request("apps", "web", parse_upgrade_input({"dryRun": True}), "u")
    assert body["spec"] == {"managedAppRef": {"name": "web"}, "origin": "ui", "dryRun": True}
    assert body["metadata"]["generateName"] == "web-preview-"


@pytest.mark.parametrize(("data", "problem"), [
    ({"version": "1.0; rm -rf"}, "not a valid chart version"),
    ({"version": 3}, "not a valid chart version"),
    ({"images": ["image.tag"]}, "images must be an object"),
    ({"images": {"image tag": "1"}}, "not dotted"),
    ({"images": {"image.tag": ""}}, "not a valid tag"),
    ({"dryRun": "yes"}, "dryRun must be true or false"),
    ({"target": "1"}, "unknown field"),
])
def test_bad_upgrade_input_is_refused(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_upgrade_input(data)


def test_bad_app_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a valid Kubernetes object name"):
        build_upgrade_request("apps", "Web_App", parse_upgrade_input({}), "u")


def test_rollback_request_needs_exactly_one_reference() -> None:
    body = build_rollback_request("apps", "web-ui-abc", None, "oidc:bob")
    body["metadata"]["name"] = "x"
    parsed = RollbackRequest.from_dict(body)
    assert parsed.spec.upgrade_request_ref is not None
    assert parsed.spec.upgrade_request_ref.name == "web-ui-abc"
    assert parsed.spec.origin.value == "ui"
    for upgrade, snapshot in ((None, None), ("a", "b")):
        with pytest.raises(ConfigError, match="exactly one"):
            build_rollback_request("apps", upgrade, snapshot, "u")


def up(name: str, app: str, started: str, snapshots: list[dict[str, Any]],
       phase: str = "Succeeded") -> UpgradeRequest:
    return UpgradeRequest.from_dict({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "UpgradeRequest",
        "metadata": {"name": name, "namespace": "apps"},
        "spec": {"managedAppRef": {"name": app}},
        "status": {"phase": phase, "startedAt": started, "snapshots": snapshots,
                   "previousIdentity": {"version": "1.0.0"},
                   "targetIdentity": {"version": "1.1.0"}}})


SNAP = {"name": "s1", "namespace": "apps", "pvc": "data", "readyToUse": True}


def test_snapshot_sets_newest_first_only_this_app() -> None:
    sets = build_snapshot_sets([
        up("u1", "web", "2026-03-01T10:00:00Z", [SNAP]),
        up("u2", "web", "2026-03-02T10:00:00Z", [SNAP, {**SNAP, "name": "s2", "pvc": "logs",
                                                        "readyToUse": False}]),
        up("u3", "other", "2026-03-03T10:00:00Z", [SNAP]),
        up("u4", "web", "2026-03-04T10:00:00Z", []),
    ], "web")
    assert [s.upgrade_request for s in sets] == ["u2", "u1"]
    assert [s.restorable for s in sets] == [False, True]


def test_data_loss_warning_names_volumes_and_time() -> None:
    chosen = build_snapshot_sets([up("u1", "web", "2026-03-01T10:00:00Z",
                                     [SNAP, {**SNAP, "name": "s2", "pvc": "logs"}])], "web")[0]
    now = dt.datetime(2026, 3, 1, 11, 30, tzinfo=dt.UTC)
    warning = build_data_loss_warning(chosen, "apps", now)
    assert warning.pvcs == ("data", "logs")
    assert "apps/data, apps/logs" in warning.text
    assert "2026-03-01 10:00:00 UTC (90 minutes ago)" in warning.text
    assert "returns to 1.0.0" in warning.text
    assert "will be lost" in warning.text
