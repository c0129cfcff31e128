"""The RollbackRequest state machine: the one route, the table pair by pair, timeouts."""

from __future__ import annotations

import itertools

import pytest

from fluxup.api.rollbackrequest import TERMINAL_ROLLBACK_PHASES, RollbackPhase
from fluxup.logic.rollback_machine import (
    ACTIVE,
    ORDER,
    TRANSITIONS,
    changes_anything,
    is_allowed,
    next_phase,
    phase_timeout,
)

P = RollbackPhase

EXPECTED_ROUTE = [
    P.PENDING,
    P.VALIDATING,
    P.SUSPENDING,
    P.STOPPING_APP,
    P.RESTORING_VOLUMES,
    P.REVERTING_GIT,
    P.RESUMING,
    P.STARTING_APP,
    P.HEALTH_CHECKING,
    P.SUCCEEDED,
]


def test_route_walks_every_phase_in_order() -> None:
    phases = [P.PENDING]
    while phases[-1] not in TERMINAL_ROLLBACK_PHASES:
        phases.append(next_phase(phases[-1]))
    assert phases == EXPECTED_ROUTE == list(ORDER)
    for src, dst in itertools.pairwise(phases):
        assert is_allowed(src, dst)


def test_queued_returns_to_pending() -> None:
    assert next_phase(P.QUEUED) is P.PENDING
    assert is_allowed(P.PENDING, P.QUEUED)
    assert is_allowed(P.QUEUED, P.PENDING)
    assert is_allowed(P.QUEUED, P.FAILED)


@pytest.mark.parametrize("phase", sorted(TERMINAL_ROLLBACK_PHASES))
def test_terminal_phases_have_no_successor(phase: RollbackPhase) -> None:
    with pytest.raises(ValueError, match="terminal"):
        next_phase(phase)
    assert not any(src is phase for src, _ in TRANSITIONS)


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(RollbackPhase, RollbackPhase)))
def test_transition_table_pair_by_pair(src: RollbackPhase, dst: RollbackPhase) -> None:
    in_order = src in ORDER[:-1] and dst is ORDER[ORDER.index(src) + 1]
    to_failed = dst is P.FAILED and src not in TERMINAL_ROLLBACK_PHASES
    queue = (src, dst) in {(P.PENDING, P.QUEUED), (P.QUEUED, P.PENDING)}
    assert is_allowed(src, dst) == (in_order or to_failed or queue), (src, dst)


def test_no_phase_is_skipped() -> None:
    """Every phase must run (a skipped RestoringVolumes would release without data)."""
    for i, src in enumerate(ORDER[:-2]):
        for later in ORDER[i + 2 :]:
            assert not is_allowed(src, later), (src, later)


def test_active_phases_hold_the_lock() -> None:
    assert frozenset(ORDER[1:-1]) == ACTIVE
    assert P.PENDING not in ACTIVE
    assert P.QUEUED not in ACTIVE


@pytest.mark.parametrize(
    ("phase", "timeout"),
    [
        (P.PENDING, None),
        (P.QUEUED, None),
        (P.VALIDATING, None),
        (P.SUSPENDING, "quiesce"),
        (P.STOPPING_APP, "quiesce"),
        (P.RESTORING_VOLUMES, "restore"),
        (P.REVERTING_GIT, "apply"),
        (P.RESUMING, "upgrade"),
        (P.STARTING_APP, "quiesce"),
        (P.HEALTH_CHECKING, "healthCheck"),
        (P.SUCCEEDED, None),
        (P.FAILED, None),
    ],
)
def test_phase_timeout(phase: RollbackPhase, timeout: str | None) -> None:
    assert phase_timeout(phase) == timeout


def test_only_phases_after_validating_change_anything() -> None:
    assert [p for p in RollbackPhase if changes_anything(p)] == [
        P.SUSPENDING,
        P.STOPPING_APP,
        P.RESTORING_VOLUMES,
        P.REVERTING_GIT,
        P.RESUMING,
        P.STARTING_APP,
        P.HEALTH_CHECKING,
    ]
