"""What the web UI shows, decided from FluxUp's objects: the inbox, app rows, activity.

Pure view models for :mod:`fluxup.ui`: the pages and the JSON API render these and
nothing else, so every rule (how updates are grouped, what counts as held, which
operation is in flight, what a rollback loses) is decided here and tested in
``tests/logic/test_inbox.py``. Input is parsed FluxUp objects; no I/O, no aiohttp.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from urllib.parse import urlencode

from fluxup.api.conditions import ConditionType, find_condition
from fluxup.api.managedapp import (
    ChartSourceKind,
    ManagedApp,
    UpdateCandidate,
    UpdateSource,
    UpdateType,
)
from fluxup.api.meta import Identity
from fluxup.api.rollbackrequest import TERMINAL_ROLLBACK_PHASES, RollbackRequest
from fluxup.api.upgraderequest import TERMINAL_UPGRADE_PHASES, UpgradePhase, UpgradeRequest
from fluxup.errors import ConfigError
from fluxup.logic.paging import DEFAULT_PER_PAGE, parse_page_number, parse_per_page

__all__ = [
    "ActivityItem",
    "AppRow",
    "AppState",
    "HoldInfo",
    "Inbox",
    "InboxQuery",
    "InboxUpdate",
    "UpdateGroup",
    "ValueChange",
    "build_activity",
    "build_app_row",
    "build_inbox",
    "build_values_diff",
    "describe_age",
    "determine_app_state",
    "determine_update_group",
    "filter_inbox",
    "group_updates",
    "parse_app_state",
    "parse_inbox_query",
    "parse_namespace_filter",
]


class AppState(StrEnum):
    """One word for an app's situation, the badge on its row."""

    UPGRADING = "Upgrading"
    ROLLING_BACK = "RollingBack"
    HELD = "Held"
    FAILED = "Failed"
    UPDATE_AVAILABLE = "UpdateAvailable"
    UP_TO_DATE = "UpToDate"
    SUSPENDED = "Suspended"
    UNKNOWN = "Unknown"


class UpdateGroup(StrEnum):
    """How the inbox groups updates: the kind of artifact, then semver distance."""

    CHART_HELM_REPOSITORY = "Chart (HelmRepository)"
    CHART_OCI = "Chart (OCI)"
    CHART_OTHER = "Chart (other source)"
    IMAGE = "Image"


@dataclass(frozen=True)
class HoldInfo:
    """What the gate holds for an app, since when, and by which line."""

    message: str
    since: dt.datetime | None
    line: str


@dataclass(frozen=True)
class AppRow:
    """One app on the dashboard."""

    namespace: str
    name: str
    state: AppState
    current_version: str | None
    available_version: str | None
    update_type: UpdateType | None
    candidates: int
    hold: HoldInfo | None
    active_request: str | None
    last_upgrade: str | None
    message: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class InboxUpdate:
    """One available update of one app (every candidate Renovate found)."""

    namespace: str
    app: str
    group: UpdateGroup
    type: UpdateType
    name: str
    current: str | None
    version: str
    values_path: str | None
    allowed: bool
    detected_at: dt.datetime | None


@dataclass(frozen=True)
class ActivityItem:
    """A recent UpgradeRequest or RollbackRequest."""

    kind: str
    namespace: str
    name: str
    app: str
    phase: str
    summary: str
    started_at: dt.datetime | None
    requested_by: str | None


@dataclass(frozen=True)
class Inbox:
    """The dashboard: rows, updates grouped, holds, recent activity, totals."""

    rows: tuple[AppRow, ...]
    updates: dict[UpdateGroup, dict[UpdateType, tuple[InboxUpdate, ...]]]
    held: tuple[AppRow, ...]
    activity: tuple[ActivityItem, ...]
    counts: dict[AppState, int] = field(default_factory=dict)

    @property
    def update_count(self) -> int:
        return sum(len(items) for by_type in self.updates.values() for items in by_type.values())

    @property
    def update_list(self) -> tuple[InboxUpdate, ...]:
        """Every update in display order (group, then major/minor/patch, then app)."""
        return tuple(u for by_type in self.updates.values() for items in by_type.values()
                     for u in items)


#: Annotation the UI writes on the requests it creates: who asked (also in the Event).
REQUESTED_BY = "fluxup.dev/requested-by"

_ACTIVE_PHASES = {UpgradePhase.PENDING, UpgradePhase.QUEUED}


def determine_update_group(app: ManagedApp, candidate: UpdateCandidate) -> UpdateGroup:
    """Images are images; a chart is grouped by the kind of its Flux source."""
    if candidate.source is UpdateSource.IMAGE:
        return UpdateGroup.IMAGE
    source = app.status.chart_source
    if source is None:
        return UpdateGroup.CHART_OTHER
    if source.kind is ChartSourceKind.OCI_REPOSITORY or (
        source.url or "").startswith("oci://"):
        return UpdateGroup.CHART_OCI
    if source.kind is ChartSourceKind.HELM_REPOSITORY:
        return UpdateGroup.CHART_HELM_REPOSITORY
    return UpdateGroup.CHART_OTHER


def _hold(app: ManagedApp) -> HoldInfo | None:
    held = find_condition(app.status.conditions, ConditionType.HELD)
    if held is None or held.status != "True":
        return None
    line = "apply time (line 1)"
    gated = find_condition(app.status.conditions, ConditionType.GATED)
    if gated is not None and gated.reason == "VersionRange":
        line = "release record (line 2)"
    return HoldInfo(held.message or "held", held.last_transition_time, line)


def determine_app_state(app: ManagedApp) -> AppState:
    """The badge: an operation in flight wins, then a hold, a failure, an update."""
    status = app.status
    if status.active_request is not None:
        if status.active_request.kind == "RollbackRequest":
            return AppState.ROLLING_BACK
        return AppState.UPGRADING
    if _hold(app) is not None:
        return AppState.HELD
    if app.spec.suspend:
        return AppState.SUSPENDED
    if status.last_upgrade is not None and status.last_upgrade.phase is UpgradePhase.FAILED:
        return AppState.FAILED
    if status.available_update is not None and status.available_update.version:
        return AppState.UPDATE_AVAILABLE
    if status.available_update is not None and status.available_update.images:
        return AppState.UPDATE_AVAILABLE
    if status.current_version is None:
        return AppState.UNKNOWN
    return AppState.UP_TO_DATE


def build_app_row(app: ManagedApp) -> AppRow:
    status = app.status
    available = status.available_update
    ready = find_condition(status.conditions, ConditionType.READY)
    last = status.last_upgrade
    return AppRow(
        namespace=app.metadata.namespace or "",
        name=app.metadata.name,
        state=determine_app_state(app),
        current_version=status.current_version,
        available_version=(available.version if available else None) or (
            ", ".join(f"{i.values_path}={i.tag}" for i in available.images)
            if available and available.images else None),
        update_type=available.type if available else None,
        candidates=len(status.available_updates),
        hold=_hold(app),
        active_request=(f"{status.active_request.kind}/{status.active_request.name}"
                        if status.active_request else None),
        last_upgrade=(f"{last.from_version or '?'} → {last.to_version or '?'} {last.phase}"
                      if last else None),
        message=(ready.message or "") if ready else "",
    )


def _allowed(app: ManagedApp, candidate: UpdateCandidate) -> bool:
    available = app.status.available_update
    if available is None:
        return False
    if candidate.source is UpdateSource.CHART:
        return available.version == candidate.version
    return any(i.values_path == candidate.values_path and i.tag == candidate.version
               for i in available.images)


def build_inbox(apps: Iterable[ManagedApp], upgrades: Iterable[UpgradeRequest] = (),
                rollbacks: Iterable[RollbackRequest] = (), activity_limit: int = 20) -> Inbox:
    """Every app's row, every candidate grouped by artifact and update type."""
    rows: list[AppRow] = []
    grouped: dict[UpdateGroup, dict[UpdateType, list[InboxUpdate]]] = {}
    ordered = sorted(apps, key=lambda a: (a.metadata.namespace or "", a.metadata.name))
    for app in ordered:
        row = build_app_row(app)
        rows.append(row)
        for cand in app.status.available_updates:
            group = determine_update_group(app, cand)
            grouped.setdefault(group, {}).setdefault(cand.type, []).append(InboxUpdate(
                namespace=row.namespace, app=row.name, group=group, type=cand.type,
                name=cand.name, current=cand.current_version, version=cand.version,
                values_path=cand.values_path, allowed=_allowed(app, cand),
                detected_at=cand.detected_at))
    type_order = (UpdateType.MAJOR, UpdateType.MINOR, UpdateType.PATCH)
    updates = {
        group: {t: tuple(grouped[group][t]) for t in type_order if t in grouped[group]}
        for group in UpdateGroup if group in grouped
    }
    counts: dict[AppState, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    return Inbox(rows=tuple(rows), updates=updates,
                 held=tuple(r for r in rows if r.hold is not None),
                 activity=build_activity(upgrades, rollbacks, activity_limit), counts=counts)


def group_updates(updates: Iterable[InboxUpdate],
                  ) -> dict[UpdateGroup, dict[UpdateType, tuple[InboxUpdate, ...]]]:
    """Updates (a page of :attr:`Inbox.update_list`) grouped again, order kept."""
    grouped: dict[UpdateGroup, dict[UpdateType, list[InboxUpdate]]] = {}
    for u in updates:
        grouped.setdefault(u.group, {}).setdefault(u.type, []).append(u)
    return {g: {t: tuple(items) for t, items in by_type.items()}
            for g, by_type in grouped.items()}


def parse_app_state(raw: str | None) -> AppState | None:
    """The ``?state=`` filter: an :class:`AppState` value, or None for every app."""
    if not raw:
        return None
    try:
        return AppState(raw)
    except ValueError:
        raise ConfigError(f"?state= must be one of {', '.join(AppState)}, got {raw!r}") from None


_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def parse_namespace_filter(raw: str | None) -> str | None:
    """The ``?namespace=`` filter: a Kubernetes namespace name, or None for all."""
    if not raw:
        return None
    if not _NAMESPACE.fullmatch(raw):
        raise ConfigError(f"?namespace= must be a namespace name (lower-case letters, digits "
                          f"and '-', at most 63), got {raw[:80]!r}")
    return raw


@dataclass(frozen=True)
class InboxQuery:
    """What the inbox and ``/api/apps``/``/api/inbox`` were asked for: filters and pages.

    ``page`` pages the apps (and, in ``/api/inbox``, the updates); ``updates_page`` pages
    the updates on the inbox page.
    """

    namespace: str | None = None
    state: AppState | None = None
    page: int = 1
    updates_page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    def link(self, **changes: object) -> str:
        """The query string (``?...``) of this view with ``changes``; defaults left out."""
        changed = replace(self, **changes)  # type: ignore[arg-type]
        pairs = [("namespace", changed.namespace), ("state", changed.state),
                 ("page", changed.page if changed.page != 1 else None),
                 ("updates_page", changed.updates_page if changed.updates_page != 1 else None),
                 ("per_page", changed.per_page if changed.per_page != DEFAULT_PER_PAGE
                  else None)]
        kept = [(k, str(v)) for k, v in pairs if v is not None]
        return "?" + urlencode(kept) if kept else "?"


def parse_inbox_query(query: Mapping[str, str]) -> InboxQuery:
    """Read ``namespace``, ``state``, ``page``, ``updates_page``, ``per_page``; a
    :class:`~fluxup.errors.ConfigError` (400) names the first bad one. Others are ignored."""
    return InboxQuery(namespace=parse_namespace_filter(query.get("namespace")),
                      state=parse_app_state(query.get("state")),
                      page=parse_page_number(query.get("page")),
                      updates_page=parse_page_number(query.get("updates_page"), "updates_page"),
                      per_page=parse_per_page(query.get("per_page")))


def filter_inbox(inbox: Inbox, state: AppState | None) -> Inbox:
    """Only the apps in ``state``, their updates and holds; the counts stay the totals
    (they label the filters) and the activity stays whole."""
    if state is None:
        return inbox
    rows = tuple(r for r in inbox.rows if r.state is state)
    keys = {r.key for r in rows}
    updates = group_updates(u for u in inbox.update_list if f"{u.namespace}/{u.app}" in keys)
    return Inbox(rows=rows, updates=updates,
                 held=tuple(r for r in inbox.held if r.key in keys),
                 activity=inbox.activity, counts=inbox.counts)


def build_activity(upgrades: Iterable[UpgradeRequest], rollbacks: Iterable[RollbackRequest],
                   limit: int = 20) -> tuple[ActivityItem, ...]:
    """The newest requests first (by start, else creation time)."""
    items: list[ActivityItem] = []
    for up in upgrades:
        target = up.status.target_identity or Identity(version=up.spec.target_version)
        prev = up.status.previous_identity
        summary = f"{_describe(prev)} → {_describe(target)}"
        if up.spec.dry_run:
            summary += " (dry run)"
        items.append(ActivityItem(
            "UpgradeRequest", up.metadata.namespace or "", up.metadata.name,
            up.spec.managed_app_ref.name, str(up.status.phase or UpgradePhase.PENDING), summary,
            up.status.started_at or up.metadata.creation_timestamp,
            up.metadata.annotations.get(REQUESTED_BY)))
    for rb in rollbacks:
        ref = rb.spec.upgrade_request_ref or rb.spec.snapshot_ref
        items.append(ActivityItem(
            "RollbackRequest", rb.metadata.namespace or "", rb.metadata.name,
            rb.status.managed_app or "", str(rb.status.phase or "Pending"),
            f"undo {ref.name if ref else '?'}",
            rb.status.started_at or rb.metadata.creation_timestamp,
            rb.metadata.annotations.get(REQUESTED_BY)))
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    items.sort(key=lambda i: i.started_at or epoch, reverse=True)
    return tuple(items[:limit])


def is_in_flight(up: UpgradeRequest | RollbackRequest) -> bool:
    """Whether the request still runs (its progress page keeps streaming)."""
    if isinstance(up, UpgradeRequest):
        return up.status.phase not in TERMINAL_UPGRADE_PHASES
    return up.status.phase not in TERMINAL_ROLLBACK_PHASES


def _describe(identity: Identity | None) -> str:
    if identity is None:
        return "?"
    parts = [identity.version] if identity.version else []
    parts += [f"{i.values_path}={i.tag}" for i in identity.images]
    return ", ".join(parts) or "?"


@dataclass(frozen=True)
class ValueChange:
    """One value that an upgrade changes: the chart version or an image tag path."""

    path: str
    before: str | None
    after: str | None


def build_values_diff(before: Identity | None, after: Identity | None) -> tuple[ValueChange, ...]:
    """What changes in the release: chart version and each image tag at its value path.

    Unchanged values are left out; a path only on one side shows ``None`` on the other.
    """
    changes: list[ValueChange] = []
    old_version = before.version if before else None
    new_version = after.version if after else None
    if old_version != new_version and new_version is not None:
        changes.append(ValueChange("chart version", old_version, new_version))
    old_images = {i.values_path: i.tag for i in (before.images if before else ())}
    new_images = {i.values_path: i.tag for i in (after.images if after else ())}
    for path in sorted(old_images.keys() | new_images.keys()):
        if path in new_images and old_images.get(path) != new_images[path]:
            changes.append(ValueChange(f"values.{path}", old_images.get(path), new_images[path]))
    return tuple(changes)


def describe_age(when: dt.datetime | None, now: dt.datetime) -> str:
    """``3m``, ``5h``, ``2d`` — how long ago, for tables."""
    if when is None:
        return "—"
    seconds = max(0, int((now - when).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def newest_first(items: Sequence[UpgradeRequest]) -> list[UpgradeRequest]:
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(items, key=lambda u: u.metadata.creation_timestamp or epoch, reverse=True)
