"""set_condition keeps lastTransitionTime unless status, reason or message change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fluxup.api.conditions import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    find_condition,
    is_true,
    set_condition,
)

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


def ready(status: ConditionStatus, reason: str, message: str, at: datetime) -> Condition:
    return Condition(ConditionType.READY, status, reason, message, at, observed_generation=2)


GATED = Condition(ConditionType.GATED, ConditionStatus.TRUE, Reason.EXACT_VERSION, "ok", T0)
OLD = ready(ConditionStatus.TRUE, Reason.SUCCEEDED, "running 6.5.3", T0)


@pytest.mark.parametrize(
    ("new", "expected_time"),
    [
        pytest.param(
            ready(ConditionStatus.TRUE, Reason.SUCCEEDED, "running 6.5.3", T1),
            T0,
            id="unchanged-keeps-time",
        ),
        pytest.param(
            ready(ConditionStatus.FALSE, Reason.SUCCEEDED, "running 6.5.3", T1),
            T1,
            id="status-changed",
        ),
        pytest.param(
            ready(ConditionStatus.TRUE, Reason.NEW_VERSION_DETECTED, "running 6.5.3", T1),
            T1,
            id="reason-changed",
        ),
        pytest.param(
            ready(ConditionStatus.TRUE, Reason.SUCCEEDED, "running 6.5.4", T1),
            T1,
            id="message-changed",
        ),
    ],
)
def test_set_condition_transition_time(new: Condition, expected_time: datetime) -> None:
    result = set_condition((GATED, OLD), new)
    assert [c.type for c in result] == ["Gated", "Ready"]  # order kept, replaced in place
    assert result[1].last_transition_time == expected_time
    assert (result[1].status, result[1].reason, result[1].message) == (
        new.status,
        new.reason,
        new.message,
    )
    assert result[0] is GATED


def test_set_condition_appends_new_types() -> None:
    result = set_condition((GATED,), OLD)
    assert result == (GATED, OLD)
    assert find_condition(result, "Ready") is OLD
    assert find_condition(result, "Stalled") is None
    assert is_true(result, ConditionType.READY)
    assert not is_true(result, ConditionType.STALLED)


def test_condition_constants_fit_the_crd_patterns() -> None:
    import re

    reason = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    assert all(reason.match(r.value) for r in Reason)
    kind = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$")
    assert all(kind.match(t.value) for t in ConditionType)
    assert len({r.value for r in Reason}) == len(Reason)
