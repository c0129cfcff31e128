"""Who may push a Renovate report: bearer token, TokenReview and SubjectAccessReview rules."""

from __future__ import annotations

from typing import Any

import pytest

from fluxup.errors import NotAuthenticatedError, NotAuthorizedError
from fluxup.logic.report_access import (
    Sender,
    bearer_token,
    build_access_review,
    build_token_review,
    determine_allowed,
    determine_sender,
)

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_"


@pytest.mark.parametrize(("header", "expected"), [
    (f"Bearer {TOKEN}", TOKEN),
    (f"bearer   {TOKEN} ", TOKEN),
    (None, "no credentials"),
    ("", "no credentials"),
    (f"Basic {TOKEN}", "not a bearer token"),
    ("Bearer", "not a bearer token"),
    ("Bearer a b", "malformed"),
    ("Bearer tok\x00en", "malformed"),
    ("Bearer " + "a" * 20_000, "malformed"),
])
def test_bearer_token(header: str | None, expected: str) -> None:
    if expected == TOKEN:
        assert bearer_token(header) == TOKEN
        return
    with pytest.raises(NotAuthenticatedError, match=expected) as info:
        bearer_token(header)
    assert "kubectl create token" in str(info.value)


def test_token_review_carries_token_and_audiences() -> None:
    assert build_token_review(TOKEN) == {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": TOKEN}}
    assert build_token_review(TOKEN, ["fluxup"])["spec"]["audiences"] == ["fluxup"]


USER = {"username": "system:serviceaccount:ci:renovate", "uid": "u-1",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:ci"],
        "extra": {"authentication.kubernetes.io/pod-name": ["renovate-1"]}}


@pytest.mark.parametrize(("status", "audiences", "problem"), [
    ({"authenticated": True, "user": USER}, (), None),
    ({"authenticated": True, "user": USER, "audiences": ["fluxup"]}, ("fluxup",), None),
    ({"authenticated": True, "user": USER, "audiences": ["https://kubernetes"]},
     ("fluxup",), "not meant for FluxUp"),
    ({"authenticated": True, "user": USER}, ("fluxup",), "not meant for FluxUp"),
    ({"authenticated": False, "error": "invalid bearer token"}, (),
     "did not authenticate the token \\(invalid bearer token\\)"),
    ({}, (), "did not authenticate"),
    ({"authenticated": "true", "user": USER}, (), "did not authenticate"),
    ({"authenticated": True, "user": {}}, (), "named no user"),
    ({"authenticated": True, "user": {"username": 7}}, (), "named no user"),
])
def test_determine_sender(status: dict[str, Any], audiences: tuple[str, ...],
                          problem: str | None) -> None:
    review = {"kind": "TokenReview", "status": status}
    if problem is None:
        sender = determine_sender(review, audiences)
        assert sender.username == USER["username"]
        assert sender.uid == "u-1"
        assert sender.groups == ("system:serviceaccounts", "system:serviceaccounts:ci")
        assert sender.extra == (("authentication.kubernetes.io/pod-name", ("renovate-1",)),)
        return
    with pytest.raises(NotAuthenticatedError, match=problem):
        determine_sender(review, audiences)


def test_access_review_asks_for_the_virtual_report_resource_cluster_wide() -> None:
    sender = Sender("system:serviceaccount:ci:renovate", "u-1", ("g1",), (("k", ("v",)),))
    review = build_access_review(sender)
    assert review["kind"] == "SubjectAccessReview"
    assert review["spec"] == {
        "user": "system:serviceaccount:ci:renovate", "uid": "u-1", "groups": ["g1"],
        "extra": {"k": ["v"]},
        "resourceAttributes": {"group": "fluxup.dev", "resource": "managedapps",
                               "subresource": "report", "verb": "create"},
    }
    assert "namespace" not in review["spec"]["resourceAttributes"]
    assert build_access_review(Sender("alice"))["spec"].keys() == {"user",
                                                                   "resourceAttributes"}


@pytest.mark.parametrize(("status", "allowed"), [
    ({"allowed": True}, True),
    ({"allowed": True, "denied": True}, False),
    ({"allowed": False, "reason": "no rule"}, False),
    ({"allowed": "true"}, False),
    ({}, False),
])
def test_determine_allowed(status: dict[str, Any], allowed: bool) -> None:
    sender = Sender("system:serviceaccount:ci:renovate")
    if allowed:
        determine_allowed({"status": status}, sender)
        return
    with pytest.raises(NotAuthorizedError, match="fluxup-report-sender") as info:
        determine_allowed({"status": status}, sender)
    assert "system:serviceaccount:ci:renovate may not send" in str(info.value)
