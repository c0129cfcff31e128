"""The operator's side of line 2: where a release is stored, what it approves, and
reading a denial back from helm-controller's conditions."""

from __future__ import annotations

import pytest

from fluxup.logic.release_record import ReleaseGate, ReleaseIdentity
from fluxup.reconcile.release_gate import (
    build_release_approval,
    determine_release_location,
    record_hold_of,
)

V1 = ReleaseIdentity("demo-app", "1.0.0", (("image.tag", "1.0"), ("image.repository", "r")))


@pytest.mark.parametrize(("spec", "status", "where"), [
    ({}, {}, ("apps", "web")),
    ({"releaseName": "custom"}, {}, ("apps", "custom")),
    ({"targetNamespace": "prod"}, {}, ("apps", "prod-web")),
    ({"storageNamespace": "store"}, {}, ("store", "web")),
    ({}, {"storageNamespace": "seen", "history": [{"name": "recorded"}]}, ("seen", "recorded")),
])
def test_release_location_follows_helm_controller(
    spec: dict[str, str], status: dict[str, object], where: tuple[str, str]
) -> None:
    hr = {"metadata": {"name": "web", "namespace": "apps"}, "spec": spec, "status": status}
    assert determine_release_location(hr) == where


def test_a_line_1_request_approves_the_deployed_identity_with_its_target() -> None:
    gate = ReleaseGate("apps/web", "apps", "web", (), (V1,))
    approved = build_release_approval(gate, None, "1.1.0", {"image.tag": "2.0"})
    assert approved == ReleaseIdentity("demo-app", "1.1.0",
                                       (("image.tag", "2.0"), ("image.repository", "r")))


def test_a_line_2_request_approves_exactly_what_was_held() -> None:
    held = ReleaseIdentity("demo-app", "1.0.0", (("image.tag", "9"),))
    gate = ReleaseGate("apps/web", "apps", "web", (), (V1,))
    assert build_release_approval(gate, held.to_json(), "5.0.0", {}) == held


def test_nothing_to_approve_before_anything_was_deployed() -> None:
    assert build_release_approval(None, None, "1.1.0", {}) is None
    assert build_release_approval(ReleaseGate("a/b", "a", "b"), None, "1.1.0", {}) is None


def test_a_denial_is_read_back_from_helm_controller_conditions() -> None:
    held = ReleaseIdentity("demo-app", "1.1.0")
    message = ("Helm upgrade failed for release apps/web with chart demo-app@1.1.0: "
               "admission webhook \"release-records.fluxup.dev\" denied the request: "
               f"FluxUp holds ... fluxup-hold={held.to_json()}")
    hr = {"status": {"conditions": [
        {"type": "Ready", "status": "False", "message": message},
    ]}}
    assert record_hold_of(hr) == held
    hr["status"]["conditions"][0]["status"] = "True"  # type: ignore[index]
    assert record_hold_of(hr) is None
    assert record_hold_of({"status": {}}) is None
