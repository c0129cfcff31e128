"""Approvals are bound to one request and outlive it never (DESIGN.md §2, rule 2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fluxup.logic.approvals import RequestState, approval_outlived, determine_request_state
from fluxup.logic.identity import (
    Approval,
    Identity,
    build_approval,
    parse_approval,
    parse_request_ref,
)

IDENT = Identity(chart="1.1.0", source="chart:web@HelmRepository/apps/charts")
BOUND = build_approval(IDENT, "UpgradeRequest/apps/u1")


@pytest.mark.parametrize(("ref", "parts"), [
    ("UpgradeRequest/apps/u1", ("UpgradeRequest", "apps", "u1")),
    ("RollbackRequest/apps/r1", ("RollbackRequest", "apps", "r1")),
    ("UpgradeRequest/apps", None),
    ("UpgradeRequest/apps/u1/x", None),
    ("Pod/apps/u1", None),
    ("UpgradeRequest//u1", None),
    ("UpgradeRequest/apps/", None),
    ("", None),
    (None, None),
    (7, None),
])
def test_parse_request_ref(ref: Any, parts: tuple[str, str, str] | None) -> None:
    assert parse_request_ref(ref) == parts


@pytest.mark.parametrize(("text", "expected"), [
    (BOUND, Approval(IDENT, "UpgradeRequest/apps/u1")),
    (IDENT.to_json(), None),  # a bare identity approves nothing
    (json.dumps({"identity": json.loads(IDENT.to_json())}), None),
    (json.dumps({"identity": json.loads(IDENT.to_json()), "request": "u1"}), None),
    (json.dumps({"identity": "1.1.0", "request": "UpgradeRequest/apps/u1"}), None),
    (json.dumps({"identity": {"chart": 1}, "request": "UpgradeRequest/apps/u1"}), None),
    (json.dumps({"identity": {}, "request": "UpgradeRequest/apps/u1", "x": 1}), None),
    ("{", None),
    ("", None),
    (None, None),
])
def test_parse_approval(text: str | None, expected: Approval | None) -> None:
    assert parse_approval(text) == expected


def test_approval_text_is_canonical_and_round_trips() -> None:
    assert build_approval(IDENT.to_json(), "UpgradeRequest/apps/u1") == BOUND
    parsed = parse_approval(BOUND)
    assert parsed is not None
    assert parsed.to_json() == BOUND


@pytest.mark.parametrize(("request_obj", "state"), [
    (None, RequestState.GONE),
    ({"metadata": {"name": "u1"}}, RequestState.ACTIVE),
    ({"metadata": {}, "status": {"phase": "Releasing"}}, RequestState.ACTIVE),
    ({"metadata": {}, "status": {"phase": "Upgrading"}}, RequestState.ACTIVE),
    ({"metadata": {}, "status": {"phase": "Succeeded"}}, RequestState.ENDED),
    ({"metadata": {}, "status": {"phase": "Failed"}}, RequestState.ENDED),
    ({"metadata": {"deletionTimestamp": "2026-03-01T10:00:00Z"},
      "status": {"phase": "Upgrading"}}, RequestState.ENDED),
    ({"metadata": "garbage", "status": "garbage"}, RequestState.ACTIVE),
])
def test_request_state(request_obj: dict[str, Any] | None, state: RequestState) -> None:
    assert determine_request_state(request_obj) is state


@pytest.mark.parametrize(("text", "state", "remove"), [
    (None, None, False),
    ("", RequestState.GONE, False),
    (BOUND, RequestState.ACTIVE, False),
    (BOUND, RequestState.ENDED, True),
    (BOUND, RequestState.GONE, True),
    (BOUND, None, True),
    (IDENT.to_json(), RequestState.ACTIVE, True),  # unbound: approves nothing, removed
    ("garbage", None, True),
])
def test_approval_outlived(text: str | None, state: RequestState | None, remove: bool) -> None:
    assert approval_outlived(text, state) is remove
