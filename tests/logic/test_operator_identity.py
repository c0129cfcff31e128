"""The operator refuses to start unless it acts as the user the gate trusts."""

from __future__ import annotations

from typing import Any

import pytest

from fluxup.errors import ConfigError
from fluxup.logic.operator_identity import (
    build_self_subject_review,
    check_operator_username,
    username_of_review,
)

OPERATOR = "system:serviceaccount:fluxup-system:fluxup-operator"


def test_the_review_asks_nothing_but_who() -> None:
    assert build_self_subject_review() == {"apiVersion": "authentication.k8s.io/v1",
                                           "kind": "SelfSubjectReview"}


@pytest.mark.parametrize(("review", "username"), [
    ({"status": {"userInfo": {"username": OPERATOR, "groups": ["system:authenticated"]}}},
     OPERATOR),
    ({"status": {"userInfo": {"username": ""}}}, None),
    ({"status": {"userInfo": {}}}, None),
    ({"status": {}}, None),
    ({"status": "x"}, None),
    ({}, None),
])
def test_username_of_review(review: dict[str, Any], username: str | None) -> None:
    if username is None:
        with pytest.raises(ConfigError, match="named no username"):
            username_of_review(review)
    else:
        assert username_of_review(review) == username


def test_the_configured_user_passes() -> None:
    check_operator_username(OPERATOR, OPERATOR)


def test_a_mismatch_refuses_to_start_and_says_how_to_fix_it() -> None:
    real = "system:serviceaccount:gitops:prod-fluxup-operator"  # namePrefix, other namespace
    with pytest.raises(ConfigError) as caught:
        check_operator_username(OPERATOR, real)
    message = str(caught.value)
    assert f"acts as {real!r}" in message
    assert f"FLUXUP_OPERATOR_USERNAME (the only user the admission gate lets approve " \
           f"releases) is {OPERATOR!r}" in message
    assert f"FLUXUP_OPERATOR_USERNAME={real}" in message
    assert "--operator-username" in message
