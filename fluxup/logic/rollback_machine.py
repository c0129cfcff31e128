"""The RollbackRequest state machine as data (DESIGN.md §3).

A rollback always walks every phase in order: Pending → Validating → Suspending →
StoppingApp → RestoringVolumes → RevertingGit → Resuming → StartingApp →
HealthChecking → Succeeded (``Queued`` waits its turn; any phase may fail). Nothing is
optional: a phase with nothing to do finishes at once. :data:`TRANSITIONS` lists every
allowed pair, :func:`next_phase` picks the successor of a finished phase,
:func:`phase_timeout` names the ManagedApp timeout bounding a phase and
:func:`changes_anything` says whether a phase may already have changed the cluster (a
failure before that changed nothing). Used by :mod:`fluxup.reconcile.rollback`. Pure.
"""

from __future__ import annotations

import itertools

from fluxup.api.rollbackrequest import TERMINAL_ROLLBACK_PHASES, RollbackPhase

__all__ = [
    "ACTIVE",
    "ORDER",
    "TRANSITIONS",
    "changes_anything",
    "is_allowed",
    "next_phase",
    "phase_timeout",
]

P = RollbackPhase

#: The phases in the order they run.
ORDER = (
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
)

#: Phases that hold the app's one-operation lock.
ACTIVE = frozenset(ORDER[1:-1])


def next_phase(phase: RollbackPhase) -> RollbackPhase:
    """The phase after ``phase`` finished successfully."""
    if phase in TERMINAL_ROLLBACK_PHASES:
        raise ValueError(f"{phase} is terminal")
    if phase is P.QUEUED:
        return P.PENDING
    return ORDER[ORDER.index(phase) + 1]


def _build_transitions() -> frozenset[tuple[RollbackPhase, RollbackPhase]]:
    pairs = {(P.PENDING, P.QUEUED), (P.QUEUED, P.PENDING), (P.QUEUED, P.FAILED)}
    for phase, successor in itertools.pairwise(ORDER):
        pairs.add((phase, successor))
        pairs.add((phase, P.FAILED))
    return frozenset(pairs)


#: Every allowed transition. Anything not listed is a bug in the reconciler.
TRANSITIONS = _build_transitions()


def is_allowed(src: RollbackPhase, dst: RollbackPhase) -> bool:
    return (src, dst) in TRANSITIONS


def phase_timeout(phase: RollbackPhase) -> str | None:
    """Name of the ManagedApp ``spec.timeouts`` field bounding ``phase``
    (``healthCheck``: ``spec.healthCheck.timeout``)."""
    return {
        P.SUSPENDING: "quiesce",
        P.STOPPING_APP: "quiesce",
        P.RESTORING_VOLUMES: "restore",
        P.REVERTING_GIT: "apply",
        P.RESUMING: "upgrade",
        P.STARTING_APP: "quiesce",
        P.HEALTH_CHECKING: "healthCheck",
    }.get(phase)


def changes_anything(phase: RollbackPhase) -> bool:
    """Whether the action of ``phase`` may change the cluster or Git (Pending, Queued and
    Validating only read, so a request failing there changed nothing)."""
    return phase not in (P.PENDING, P.QUEUED, P.VALIDATING) and phase not in (
        TERMINAL_ROLLBACK_PHASES
    )
