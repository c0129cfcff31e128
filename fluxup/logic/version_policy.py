"""Apply a ManagedApp's versionPolicy to what Renovate found: candidates, pick, auto-update.

Called by the Renovate ingest reconciler once per app and scan. Given the app (spec and
last status), its mapped findings (:mod:`fluxup.logic.renovate_map`) and how the scan
went, :func:`decide_updates` returns the new ``status.availableUpdates`` (every candidate,
allowed or not), ``status.availableUpdate`` (per chart and image slot the highest
candidate the ``constraint`` allows), the ``UpdatesChecked``/``UpdateAvailable``
conditions, and the target an automatic upgrade may start (the highest allowed candidate
whose update type is within ``autoUpdate``; :func:`determine_auto_target` derives the same
target from the status later, for upgrades the maintenance window held back).

Safety rules: a failed or aborted scan, a report that does not cover the app's file, and a
registry that could not be reached never clear what was found before — the previous
candidates are kept (for an unreachable registry: those of the slots it serves) and the
condition names the reason. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from fluxup.api.conditions import Reason
from fluxup.api.managedapp import (
    AutoUpdate,
    AvailableUpdate,
    ManagedApp,
    UpdateCandidate,
    UpdateSource,
    UpdateType,
)
from fluxup.api.meta import Identity, ImageTag
from fluxup.logic.maintenance_window import determine_window
from fluxup.logic.renovate_map import AppFindings, Finding
from fluxup.logic.versions import Constraint, Version, parse_constraint, parse_version

__all__ = [
    "MAX_CANDIDATES",
    "ScanOutcome",
    "StatusCondition",
    "UpdateDecision",
    "decide_updates",
    "determine_auto_target",
]

#: ``status.availableUpdates`` holds at most this many (the CRD's maxItems).
MAX_CANDIDATES = 64
_RANK = {UpdateType.PATCH: 1, UpdateType.MINOR: 2, UpdateType.MAJOR: 3}
_LEVEL = {AutoUpdate.NONE: 0, AutoUpdate.PATCH: 1, AutoUpdate.MINOR: 2, AutoUpdate.MAJOR: 3}
Slot = tuple[UpdateSource, str, str | None]


@dataclass(frozen=True)
class ScanOutcome:
    """How the scan that produced the findings went. ``ok=False``: Renovate failed,
    aborted or its report was unusable; ``reason``/``message`` say why."""

    ok: bool
    reason: str = Reason.SUCCEEDED.value
    message: str = ""


@dataclass(frozen=True)
class StatusCondition:
    """A condition to set: type, status, reason, message."""

    type: str
    ok: bool
    reason: str
    message: str


@dataclass(frozen=True)
class UpdateDecision:
    """What to write to the app's status, and what to upgrade to on its own (if any)."""

    candidates: tuple[UpdateCandidate, ...]
    available: AvailableUpdate | None
    conditions: tuple[StatusCondition, ...]
    auto_target: Identity | None = None


def _slot(c: UpdateCandidate) -> Slot:
    return (c.source, c.name, c.values_path)


def _sort_key(c: UpdateCandidate) -> tuple[str, str, str, Version]:
    return (c.source.value, c.values_path or "", c.name,
            parse_version(c.version) or Version(0, 0, 0))


def _constraints(app: ManagedApp) -> tuple[dict[Slot | str, Constraint | None], list[str]]:
    """Parsed constraints by ``"chart"`` / values path; messages for unparsable ones."""
    out: dict[Slot | str, Constraint | None] = {}
    errors = []
    policy = app.spec.version_policy
    pairs = [("chart", "versionPolicy.chart.constraint", policy.chart.constraint)]
    pairs += [(i.values_path, f"versionPolicy.images[{i.values_path}].constraint", i.constraint)
              for i in policy.images]
    for key, where, text in pairs:
        if not text:
            out[key] = None
            continue
        try:
            out[key] = parse_constraint(text)
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
            out[key] = parse_constraint("<0.0.0")  # allows nothing until it is fixed
    return out, errors


def _policy_key(c: UpdateCandidate) -> str | None:
    if c.source is UpdateSource.CHART:
        return "chart"
    return c.values_path


def _auto_level(app: ManagedApp, c: UpdateCandidate) -> int:
    policy = app.spec.version_policy
    if c.source is UpdateSource.CHART:
        return _LEVEL[policy.chart.auto_update]
    for image in policy.images:
        if image.values_path == c.values_path:
            return _LEVEL[image.auto_update]
    return 0


def _allowed(c: UpdateCandidate, constraints: dict[Slot | str, Constraint | None]) -> bool:
    key = _policy_key(c)
    if key is None:
        return False  # images without a value path are listed, never applied
    constraint = constraints.get(key)
    return constraint is None or constraint.allows(c.version)


def _current(app: ManagedApp, c: UpdateCandidate) -> str | None:
    if c.source is UpdateSource.CHART:
        return app.status.current_version
    for image in app.status.current_images:
        if image.values_path == c.values_path:
            return image.tag
    return c.current_version


def _still_newer(app: ManagedApp, c: UpdateCandidate) -> bool:
    current = parse_version(_current(app, c) or "")
    new = parse_version(c.version)
    return current is None or new is None or new > current


def _highest(cands: Iterable[UpdateCandidate]) -> dict[Slot, UpdateCandidate]:
    best: dict[Slot, UpdateCandidate] = {}
    for c in cands:
        old = best.get(_slot(c))
        if old is None or (parse_version(c.version) or Version(0, 0, 0)) > (
            parse_version(old.version) or Version(0, 0, 0)
        ):
            best[_slot(c)] = c
    return best


def _identity(picks: dict[Slot, UpdateCandidate]) -> tuple[str | None, tuple[ImageTag, ...]]:
    version = next((c.version for s, c in picks.items() if s[0] is UpdateSource.CHART), None)
    images = tuple(
        ImageTag(values_path=c.values_path, tag=c.version, name=c.name)
        for s, c in sorted(picks.items(), key=lambda kv: kv[0][2] or "")
        if s[0] is UpdateSource.IMAGE and c.values_path
    )
    return version, images


def _describe(picks: dict[Slot, UpdateCandidate]) -> str:
    parts = []
    for (source, name, path), c in sorted(picks.items(), key=lambda kv: (kv[0][0], kv[0][2] or "")):
        what = f"chart {name}" if source is UpdateSource.CHART else f"image {path}"
        parts.append(f"{what} {c.version} ({c.type.value})")
    return ", ".join(parts)


def _candidates(app: ManagedApp, findings: Sequence[Finding], keep_slots: set[Slot],
                now: datetime) -> tuple[UpdateCandidate, ...]:
    previous = {(*_slot(c), c.version): c for c in app.status.available_updates}
    out: dict[tuple[object, ...], UpdateCandidate] = {}
    for f in findings:
        key = (*f.slot, f.version)
        old = previous.get(key)
        out[key] = UpdateCandidate(
            source=f.source, name=f.name, version=f.version, type=f.type,
            values_path=f.values_path, current_version=f.current_version,
            detected_at=old.detected_at if old and old.detected_at else now,
        )
    for key, c in previous.items():  # slots whose registry failed keep what they had
        if _slot(c) in keep_slots and key not in out and _still_newer(app, c):
            out[key] = c
    ordered = sorted(out.values(), key=_sort_key, reverse=True)
    return tuple(sorted(ordered[:MAX_CANDIDATES], key=_sort_key))


def decide_updates(
    app: ManagedApp, findings: AppFindings | None, outcome: ScanOutcome, now: datetime
) -> UpdateDecision:
    """The status update for ``app`` after a scan (see the module docstring).

    ``findings`` is ``None`` when the report does not cover the app's file.
    """
    checked: StatusCondition
    if not outcome.ok or findings is None:
        message = outcome.message if not outcome.ok else (
            f"Renovate's report does not cover {app.status.git.file if app.status.git else '?'}"
            " (check the managers' file patterns); the last known updates are kept"
        )
        checked = StatusCondition("UpdatesChecked", False,
                                  outcome.reason if not outcome.ok else Reason.REPORT_INVALID,
                                  message)
        candidates = app.status.available_updates
        keep_available = app.status.available_update
        return UpdateDecision(candidates, keep_available,
                              (checked, *_available_condition(app, keep_available, [])))
    failed_slots = {p.slot for p in findings.problems}
    candidates = _candidates(app, findings.findings, failed_slots, now)
    constraints, errors = _constraints(app)
    allowed = [c for c in candidates if _allowed(c, constraints) and _still_newer(app, c)]
    picks = _highest(allowed)
    available: AvailableUpdate | None = None
    if picks:
        version, images = _identity(picks)
        biggest = max((c.type for c in picks.values()), key=_RANK.__getitem__)
        previous = app.status.available_update
        same = previous is not None and (previous.version, previous.images) == (version, images)
        available = AvailableUpdate(
            version=version, images=images, type=biggest,
            detected_at=previous.detected_at if same and previous else now,
        )
    auto_target = _auto_target(app, allowed)
    window = determine_window(app.spec.version_policy.maintenance_window, now)
    waiting = ""
    if auto_target is not None and window.problem:
        waiting = f"{window.problem}, so autoUpdate starts nothing"
    elif auto_target is not None and app.spec.version_policy.maintenance_window is not None:
        waiting = f"autoUpdate starts it in the maintenance window ({window.description})"
    if findings.problems:
        registries = sorted({p.registry for p in findings.problems})
        checked = StatusCondition(
            "UpdatesChecked", False, Reason.RENOVATE_FAILED,
            f"Renovate could not look up versions at {', '.join(registries)}: "
            f"{findings.problems[0].message}; the last known updates of those are kept",
        )
    else:
        checked = StatusCondition(
            "UpdatesChecked", True, Reason.SUCCEEDED,
            f"Renovate checked {', '.join(sorted(findings.files))}: "
            f"{len(candidates)} newer version(s)",
        )
    return UpdateDecision(candidates, available,
                          (checked, *_available_condition(app, available, errors, picks,
                                                          waiting)),
                          auto_target)


def _auto_target(app: ManagedApp, allowed: Iterable[UpdateCandidate]) -> Identity | None:
    auto = _highest(c for c in allowed if _RANK[c.type] <= _auto_level(app, c))
    if not auto:
        return None
    version, images = _identity(auto)
    return Identity(version=version, images=images)


def determine_auto_target(app: ManagedApp) -> Identity | None:
    """What ``autoUpdate`` upgrades to, from the candidates in the app's status: the
    target :func:`decide_updates` chose at the last scan, re-derived so that an upgrade
    held back (maintenance window, a request in flight) starts later without a scan.
    Candidates the app already runs (or passed) are not targets."""
    constraints, _ = _constraints(app)
    allowed = [c for c in app.status.available_updates
               if _allowed(c, constraints) and _still_newer(app, c)]
    return _auto_target(app, allowed)


def _available_condition(
    app: ManagedApp, available: AvailableUpdate | None, errors: list[str],
    picks: dict[Slot, UpdateCandidate] | None = None, waiting: str = "",
) -> tuple[StatusCondition, ...]:
    if errors:
        return (StatusCondition("UpdateAvailable", False, Reason.FAILED,
                                "; ".join(errors) + "; fix the versionPolicy"),)
    if available is None:
        return (StatusCondition("UpdateAvailable", False, Reason.UP_TO_DATE,
                                "no newer version the versionPolicy allows"),)
    if picks:
        text = _describe(picks)
    else:
        text = ", ".join(
            ([f"chart {available.version}"] if available.version else [])
            + [f"image {i.values_path} {i.tag}" for i in available.images]
        )
    return (StatusCondition("UpdateAvailable", True, Reason.NEW_VERSION_DETECTED,
                            f"{text} available" + (f"; {waiting}" if waiting else "")),)
