"""The UpgradeRequest state machine as data (DESIGN.md §3).

:data:`TRANSITIONS` lists every allowed ``(from, to)`` pair; :func:`next_phase` picks
the successor of a finished phase for a given request (origin, quiesce, snapshots,
dry run); :func:`phase_timeout` names which ManagedApp timeout bounds a phase. The
reconciler (:mod:`fluxup.reconcile.upgrade`) runs one small idempotent action per
phase and asks this module where to go next. Pure; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from fluxup.api.upgraderequest import TERMINAL_UPGRADE_PHASES, Origin, UpgradePhase

__all__ = ["ACTIVE", "TRANSITIONS", "Route", "is_allowed", "next_phase", "phase_timeout"]

P = UpgradePhase


@dataclass(frozen=True)
class Route:
    """The facts of a request that decide which optional phases run."""

    origin: Origin
    quiesce: bool
    snapshots: bool
    dry_run: bool


_ORDER = (
    P.PENDING,
    P.PREFLIGHT,
    P.COMMITTING,
    P.AWAITING_APPLY,
    P.QUIESCING,
    P.SNAPSHOTTING,
    P.RELEASING,
    P.UPGRADING,
    P.HEALTH_CHECKING,
    P.SUCCEEDED,
)

#: Phases that hold the app's one-operation lock.
ACTIVE = frozenset(_ORDER[1:-1])


def _runs(phase: UpgradePhase, route: Route) -> bool:
    if phase is P.COMMITTING:
        return route.origin is not Origin.GIT
    if phase is P.QUIESCING:
        return route.quiesce and route.snapshots
    if phase is P.SNAPSHOTTING:
        return route.snapshots
    return True


def next_phase(phase: UpgradePhase, route: Route) -> UpgradePhase:
    """The phase after ``phase`` finished successfully."""
    if phase in TERMINAL_UPGRADE_PHASES:
        raise ValueError(f"{phase} is terminal")
    if phase is P.QUEUED:
        return P.PENDING
    if phase is P.PREFLIGHT and route.dry_run:
        return P.SUCCEEDED
    index = _ORDER.index(phase) + 1
    while not _runs(_ORDER[index], route):
        index += 1
    return _ORDER[index]


def _build_transitions() -> frozenset[tuple[UpgradePhase, UpgradePhase]]:
    pairs = {(P.PENDING, P.QUEUED), (P.QUEUED, P.PENDING), (P.PREFLIGHT, P.SUCCEEDED)}
    for i, phase in enumerate(_ORDER[:-1]):
        pairs.add((phase, P.FAILED))
        for later in _ORDER[i + 1 :]:
            # optional phases may be skipped, never the mandatory ones in between
            between = _ORDER[i + 1 : _ORDER.index(later)]
            if all(b in (P.COMMITTING, P.QUIESCING, P.SNAPSHOTTING) for b in between):
                pairs.add((phase, later))
    pairs.add((P.QUEUED, P.FAILED))
    return frozenset(pairs)


#: Every allowed transition. Anything not listed is a bug in the reconciler.
TRANSITIONS = _build_transitions()


def is_allowed(src: UpgradePhase, dst: UpgradePhase) -> bool:
    return (src, dst) in TRANSITIONS


def phase_timeout(phase: UpgradePhase) -> str | None:
    """Name of the ``spec.timeouts`` field bounding ``phase`` (``healthCheck`` for health)."""
    return {
        P.AWAITING_APPLY: "apply",
        P.COMMITTING: "apply",
        P.QUIESCING: "quiesce",
        P.SNAPSHOTTING: "snapshot",
        P.RELEASING: "upgrade",
        P.UPGRADING: "upgrade",
        P.HEALTH_CHECKING: "healthCheck",
    }.get(phase)
