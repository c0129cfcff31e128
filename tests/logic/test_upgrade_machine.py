"""The UpgradeRequest state machine: routes through the phases, the transition table pair
by pair, and which timeout bounds which phase."""

from __future__ import annotations

import itertools

import pytest

from fluxup.api.upgraderequest import TERMINAL_UPGRADE_PHASES, Origin, UpgradePhase
from fluxup.logic.upgrade_machine import (
    ACTIVE,
    TRANSITIONS,
    Route,
    is_allowed,
    next_phase,
    phase_timeout,
)

P = UpgradePhase

# --- routes -----------------------------------------------------------------------------

_START = [P.PENDING, P.PREFLIGHT]
_COMMIT = [P.COMMITTING]
_APPLY = [P.AWAITING_APPLY]
_QUIESCE = [P.QUIESCING]
_SNAPSHOT = [P.SNAPSHOTTING]
_RELEASE = [P.RELEASING, P.UPGRADING, P.HEALTH_CHECKING, P.SUCCEEDED]
_DRY_RUN = [P.PENDING, P.PREFLIGHT, P.SUCCEEDED]

#: (quiesce, snapshots) -> the phases between AwaitingApply and Releasing.
_PROTECT = {
    (True, True): _QUIESCE + _SNAPSHOT,
    (False, True): _SNAPSHOT,
    (True, False): [],  # nothing to snapshot, so nothing to quiesce for
    (False, False): [],
}

ROUTES = [
    pytest.param(
        Route(origin, quiesce, snapshots, dry_run),
        _DRY_RUN
        if dry_run
        else _START
        + (_COMMIT if origin is not Origin.GIT else [])
        + _APPLY
        + _PROTECT[quiesce, snapshots]
        + _RELEASE,
        id=f"{origin}-quiesce={quiesce}-snapshots={snapshots}-dry_run={dry_run}",
    )
    for origin, quiesce, snapshots, dry_run in itertools.product(
        Origin, (True, False), (True, False), (True, False)
    )
]


def walk(route: Route) -> list[UpgradePhase]:
    phases = [P.PENDING]
    while phases[-1] not in TERMINAL_UPGRADE_PHASES:
        phases.append(next_phase(phases[-1], route))
        assert len(phases) < 20, phases
    return phases


@pytest.mark.parametrize(("route", "expected"), ROUTES)
def test_route_walks_the_expected_phases(route: Route, expected: list[UpgradePhase]) -> None:
    phases = walk(route)
    assert phases == expected
    for src, dst in itertools.pairwise(phases):
        assert is_allowed(src, dst), f"{src} -> {dst} is not in the table"


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        pytest.param(
            Route(Origin.GIT, True, True, False),
            [
                P.PENDING,
                P.PREFLIGHT,
                P.AWAITING_APPLY,
                P.QUIESCING,
                P.SNAPSHOTTING,
                P.RELEASING,
                P.UPGRADING,
                P.HEALTH_CHECKING,
                P.SUCCEEDED,
            ],
            id="git-everything",
        ),
        pytest.param(
            Route(Origin.UI, False, True, False),
            [
                P.PENDING,
                P.PREFLIGHT,
                P.COMMITTING,
                P.AWAITING_APPLY,
                P.SNAPSHOTTING,
                P.RELEASING,
                P.UPGRADING,
                P.HEALTH_CHECKING,
                P.SUCCEEDED,
            ],
            id="ui-snapshots-only",
        ),
        pytest.param(
            Route(Origin.RENOVATE, True, False, False),
            [
                P.PENDING,
                P.PREFLIGHT,
                P.COMMITTING,
                P.AWAITING_APPLY,
                P.RELEASING,
                P.UPGRADING,
                P.HEALTH_CHECKING,
                P.SUCCEEDED,
            ],
            id="renovate-quiesce-without-snapshots",
        ),
        pytest.param(
            Route(Origin.KUBECTL, True, True, True),
            [P.PENDING, P.PREFLIGHT, P.SUCCEEDED],
            id="kubectl-dry-run",
        ),
    ],
)
def test_route_examples_spelled_out(route: Route, expected: list[UpgradePhase]) -> None:
    assert walk(route) == expected


@pytest.mark.parametrize("route", [p.values[0] for p in ROUTES])
def test_queued_goes_back_to_pending(route: Route) -> None:
    assert next_phase(P.QUEUED, route) is P.PENDING


@pytest.mark.parametrize("phase", sorted(TERMINAL_UPGRADE_PHASES))
def test_next_phase_of_terminal_phase_raises(phase: UpgradePhase) -> None:
    with pytest.raises(ValueError, match=f"{phase} is terminal"):
        next_phase(phase, Route(Origin.KUBECTL, False, True, False))


def test_active_phases_hold_the_lock() -> None:
    assert set(ACTIVE) == {
        P.PREFLIGHT,
        P.COMMITTING,
        P.AWAITING_APPLY,
        P.QUIESCING,
        P.SNAPSHOTTING,
        P.RELEASING,
        P.UPGRADING,
        P.HEALTH_CHECKING,
    }


# --- the transition table ---------------------------------------------------------------

ALLOWED = {
    P.PENDING: {P.QUEUED, P.PREFLIGHT, P.FAILED},
    P.QUEUED: {P.PENDING, P.FAILED},
    P.PREFLIGHT: {P.COMMITTING, P.AWAITING_APPLY, P.SUCCEEDED, P.FAILED},
    P.COMMITTING: {P.AWAITING_APPLY, P.FAILED},
    P.AWAITING_APPLY: {P.QUIESCING, P.SNAPSHOTTING, P.RELEASING, P.FAILED},
    P.QUIESCING: {P.SNAPSHOTTING, P.RELEASING, P.FAILED},
    P.SNAPSHOTTING: {P.RELEASING, P.FAILED},
    P.RELEASING: {P.UPGRADING, P.FAILED},
    P.UPGRADING: {P.HEALTH_CHECKING, P.FAILED},
    P.HEALTH_CHECKING: {P.SUCCEEDED, P.FAILED},
    P.SUCCEEDED: set(),
    P.FAILED: set(),
}


def test_table_lists_exactly_the_allowed_pairs() -> None:
    assert {(s, d) for s, targets in ALLOWED.items() for d in targets} == TRANSITIONS
    assert set(ALLOWED) == set(UpgradePhase)


@pytest.mark.parametrize(
    ("src", "dst"),
    [pytest.param(s, d, id=f"{s}->{d}") for s, d in itertools.product(UpgradePhase, repeat=2)],
)
def test_is_allowed_pair_by_pair(src: UpgradePhase, dst: UpgradePhase) -> None:
    assert is_allowed(src, dst) is (dst in ALLOWED[src])


@pytest.mark.parametrize(
    ("src", "dst", "allowed"),
    [
        (P.SNAPSHOTTING, P.RELEASING, True),
        (P.AWAITING_APPLY, P.RELEASING, True),  # snapshots disabled
        (P.PREFLIGHT, P.AWAITING_APPLY, True),  # origin git commits nothing
        (P.PREFLIGHT, P.SUCCEEDED, True),  # dry run
        (P.PENDING, P.QUEUED, True),
        (P.QUEUED, P.PENDING, True),
        (P.UPGRADING, P.SNAPSHOTTING, False),  # never backwards
        (P.RELEASING, P.SNAPSHOTTING, False),
        (P.HEALTH_CHECKING, P.UPGRADING, False),
        (P.PREFLIGHT, P.RELEASING, False),  # AwaitingApply is mandatory
        (P.PREFLIGHT, P.SNAPSHOTTING, False),
        (P.PENDING, P.COMMITTING, False),  # Preflight is mandatory
        (P.QUEUED, P.PREFLIGHT, False),  # a queued request re-acquires the lock first
        (P.AWAITING_APPLY, P.UPGRADING, False),  # Releasing is mandatory
        (P.RELEASING, P.HEALTH_CHECKING, False),
        (P.UPGRADING, P.SUCCEEDED, False),  # health is always checked
        (P.COMMITTING, P.SUCCEEDED, False),  # only Preflight may end a dry run
        (P.SNAPSHOTTING, P.SNAPSHOTTING, False),  # staying is not a transition
        (P.SUCCEEDED, P.FAILED, False),
        (P.FAILED, P.PENDING, False),
        (P.SUCCEEDED, P.PENDING, False),
    ],
)
def test_is_allowed_examples(src: UpgradePhase, dst: UpgradePhase, allowed: bool) -> None:
    assert is_allowed(src, dst) is allowed


@pytest.mark.parametrize("phase", sorted(set(UpgradePhase) - TERMINAL_UPGRADE_PHASES))
def test_every_non_terminal_phase_may_fail(phase: UpgradePhase) -> None:
    assert is_allowed(phase, P.FAILED)


@pytest.mark.parametrize("phase", sorted(TERMINAL_UPGRADE_PHASES))
def test_terminal_phases_go_nowhere(phase: UpgradePhase) -> None:
    assert not any(is_allowed(phase, other) for other in UpgradePhase)


# --- timeouts ---------------------------------------------------------------------------

TIMEOUTS = {
    P.PENDING: None,
    P.QUEUED: None,
    P.PREFLIGHT: None,
    P.COMMITTING: "apply",
    P.AWAITING_APPLY: "apply",
    P.QUIESCING: "quiesce",
    P.SNAPSHOTTING: "snapshot",
    P.RELEASING: "upgrade",
    P.UPGRADING: "upgrade",
    P.HEALTH_CHECKING: "healthCheck",
    P.SUCCEEDED: None,
    P.FAILED: None,
}


@pytest.mark.parametrize(("phase", "timeout"), TIMEOUTS.items())
def test_phase_timeout(phase: UpgradePhase, timeout: str | None) -> None:
    assert phase_timeout(phase) == timeout


def test_phase_timeout_table_covers_every_phase() -> None:
    assert set(TIMEOUTS) == set(UpgradePhase)
