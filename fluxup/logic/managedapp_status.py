"""A ManagedApp's conditions, computed: what one pass observed, summarized into ``Ready``.

The ManagedApp reconciler (:mod:`fluxup.reconcile.managedapp`) and its discovery
(:mod:`fluxup.reconcile.managedapp_discovery`) record what they find in an
:class:`Observation`; :func:`summarize_managedapp` turns it into the status conditions
— the only code that writes a ManagedApp's ``Ready``: true when ``Discovered``,
``Gated`` and (with snapshots on) ``SnapshotCapable`` are true, else false naming every
problem. :func:`merge_scan_conditions` keeps the conditions the Renovate scan owns
(``UpdatesChecked``, ``UpdateAvailable``) as the object holds them when the reconciler
writes, since a scan in another process (``fluxup scan``) may have written them since
the reconciler read the object. Pure; no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fluxup.api.conditions import Condition, ConditionStatus, ConditionType, Reason, set_condition

__all__ = ["SCAN_CONDITIONS", "Observation", "merge_scan_conditions", "summarize_managedapp"]

#: Condition types written by the Renovate scan (:mod:`fluxup.reconcile.renovate`), not by
#: the ManagedApp reconciler.
SCAN_CONDITIONS = frozenset({ConditionType.UPDATES_CHECKED.value,
                             ConditionType.UPDATE_AVAILABLE.value})


@dataclass
class Observation:
    """What one pass found: conditions (type, ok, reason, message) and status fields."""

    conditions: list[tuple[str, bool, str, str]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)

    def condition(self, type_: str, ok: bool, reason: str, message: str) -> None:
        self.conditions.append((type_, ok, str(reason), message))

    def has(self, type_: str) -> bool:
        return any(c[0] == type_ for c in self.conditions)


def summarize_managedapp(
    previous: Iterable[Condition],
    seen: Observation,
    snapshots_enabled: bool,
    release_name: str,
    generation: int | None,
    now: dt.datetime,
) -> tuple[Condition, ...]:
    """The conditions after this pass, ``Ready`` summarizing the required ones."""
    conditions = tuple(previous)
    for type_, ok, reason, message in seen.conditions:
        status = ConditionStatus.TRUE if ok else ConditionStatus.FALSE
        conditions = set_condition(
            conditions, Condition(type_, status, reason, message, now, generation)
        )
    required = [ConditionType.DISCOVERED.value, ConditionType.GATED.value]
    if snapshots_enabled:
        required.append(ConditionType.SNAPSHOT_CAPABLE.value)
    observed = {c[0]: c for c in seen.conditions}
    problems = [observed[t][3] for t in required if t in observed and not observed[t][1]]
    problems += [f"{t} unknown" for t in required if t not in observed]
    if problems:
        ready = Condition(ConditionType.READY, ConditionStatus.FALSE, Reason.FAILED,
                          "; ".join(problems), now, generation)
    else:
        version = seen.status.get("currentVersion") or "unknown version"
        ready = Condition(ConditionType.READY, ConditionStatus.TRUE, Reason.SUCCEEDED,
                          f"managing {release_name} at {version}", now, generation)
    return set_condition(conditions, ready)


def merge_scan_conditions(
    ours: Iterable[dict[str, Any]], current: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The reconciler's encoded conditions ``ours``, with every :data:`SCAN_CONDITIONS`
    entry taken from ``current`` (the object's conditions now) instead: replaced in place,
    dropped when ``current`` has none, appended when only ``current`` has it."""
    theirs = {c.get("type"): c for c in current if c.get("type") in SCAN_CONDITIONS}
    out = []
    for c in ours:
        if c.get("type") not in SCAN_CONDITIONS:
            out.append(c)
        elif c.get("type") in theirs:
            out.append(theirs.pop(c.get("type")))
    out.extend(theirs[t] for t in sorted(theirs, key=str))
    return out
