"""What FluxUp announces, to whom, and in which words: the pure half of notifications.

A :class:`Notice` is one thing that happened to a managed app (an update became
available, an upgrade started, succeeded or failed, the gate held a release, someone
bypassed the gate, a rollback ended). The reconcilers build notices at their transitions
and hand them to the notifier adapter (:mod:`fluxup.adapters.notify`); this module
decides whether the app wants the notice (``spec.notifications``), the title and body
people read, and the event in Flux's ``event.v1beta1`` format that
notification-controller routes through existing Alerts and Providers.

Flux's Alerts select events by the *involved object*, and only Flux kinds may be
selected, so FluxUp's events are about the app's HelmRelease. notification-controller
keeps only metadata keys prefixed with that object's API group (plus ``revision``), so
FluxUp's keys carry the ``helm.toolkit.fluxcd.io/`` prefix.

Pure: no I/O, no clock (the caller passes ``now``). Notices never hold secrets: only
names, versions, reasons and messages FluxUp itself wrote.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, TypedDict

__all__ = [
    "FluxEvent",
    "FluxObjectReference",
    "Notice",
    "NoticeKind",
    "NoticePrefs",
    "Subject",
    "build_flux_event",
    "build_text",
    "describe_identity",
    "is_wanted",
    "level_of",
    "severity_of",
]

#: The API group whose prefix notification-controller keeps on a HelmRelease's metadata.
HELM_GROUP = "helm.toolkit.fluxcd.io"
#: ``reportingController`` of FluxUp's events.
CONTROLLER = "fluxup-operator"


class NoticeKind(enum.StrEnum):
    """The events of FluxUp's design that are announced; values are Flux event reasons."""

    UPDATE_AVAILABLE = "UpdateAvailable"
    UPGRADE_STARTED = "UpgradeStarted"
    UPGRADE_SUCCEEDED = "UpgradeSucceeded"
    UPGRADE_FAILED = "UpgradeFailed"
    RELEASE_HELD = "ReleaseHeld"
    GATE_BYPASSED = "GateBypassed"
    ROLLBACK_SUCCEEDED = "RollbackSucceeded"
    ROLLBACK_FAILED = "RollbackFailed"


_FAILURES = frozenset({NoticeKind.UPGRADE_FAILED, NoticeKind.ROLLBACK_FAILED})
_PROGRESS = frozenset(
    {NoticeKind.UPGRADE_STARTED, NoticeKind.UPGRADE_SUCCEEDED, NoticeKind.ROLLBACK_SUCCEEDED}
)
_ALWAYS = frozenset({NoticeKind.RELEASE_HELD, NoticeKind.GATE_BYPASSED})


@dataclass(frozen=True)
class NoticePrefs:
    """The app's ``spec.notifications`` (all on by default)."""

    on_available: bool = True
    on_upgrade: bool = True
    on_failure: bool = True


@dataclass(frozen=True)
class Subject:
    """The Kubernetes object a notice is about (the app's HelmRelease, normally)."""

    kind: str
    namespace: str
    name: str
    api_version: str = f"{HELM_GROUP}/v2"
    uid: str | None = None


@dataclass(frozen=True)
class Notice:
    """One announced event of one app. ``app`` is ``namespace/name`` of the ManagedApp;
    ``request`` the UpgradeRequest/RollbackRequest (``namespace/name``) when there is
    one; ``detail`` a reason or error message FluxUp wrote (never a secret)."""

    kind: NoticeKind
    app: str
    subject: Subject
    from_version: str | None = None
    to_version: str | None = None
    request: str | None = None
    detail: str | None = None
    origin: str | None = None
    duration_seconds: float | None = None
    snapshots: tuple[str, ...] = ()
    prefs: NoticePrefs = field(default_factory=NoticePrefs)


def is_wanted(notice: Notice) -> bool:
    """Whether the app's preferences let this notice out (holds/bypasses always do)."""
    if notice.kind in _ALWAYS:
        return True
    if notice.kind in _FAILURES:
        return notice.prefs.on_failure
    if notice.kind in _PROGRESS:
        return notice.prefs.on_upgrade
    return notice.prefs.on_available


def severity_of(kind: NoticeKind) -> Literal["info", "error"]:
    """Flux severity: failures and bypasses are errors, everything else info."""
    return "error" if kind in _FAILURES or kind is NoticeKind.GATE_BYPASSED else "info"


def level_of(kind: NoticeKind) -> Literal["info", "success", "warning", "failure"]:
    """How a chat service should colour the notice (Apprise's notify types)."""
    if kind in _FAILURES:
        return "failure"
    if kind in (NoticeKind.UPGRADE_SUCCEEDED, NoticeKind.ROLLBACK_SUCCEEDED):
        return "success"
    if kind in (NoticeKind.GATE_BYPASSED, NoticeKind.RELEASE_HELD):
        return "warning"
    return "info"


def describe_identity(version: str | None, images: Iterable[tuple[str, str]] = ()) -> str | None:
    """``12.5.0`` or ``12.5.0 (image.tag=1.2.3)`` or ``image.tag=1.2.3``; None if empty."""
    parts = [f"{path}={tag}" for path, tag in images]
    if version and parts:
        return f"{version} ({', '.join(parts)})"
    return version or (", ".join(parts) if parts else None)


def _span(seconds: float) -> str:
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _versions(notice: Notice) -> str:
    if notice.from_version and notice.to_version:
        return f"{notice.from_version} → {notice.to_version}"
    return notice.to_version or notice.from_version or "an unknown version"


def build_text(notice: Notice, ui_url: str | None = None) -> tuple[str, str]:
    """The title and the plain-text body people read."""
    app = notice.app
    target = notice.to_version or "an unknown version"
    titles = {
        NoticeKind.UPDATE_AVAILABLE: f"Update available for {app}: {target}",
        NoticeKind.UPGRADE_STARTED: f"Upgrading {app} to {target}",
        NoticeKind.UPGRADE_SUCCEEDED: f"Upgraded {app} to {target}",
        NoticeKind.UPGRADE_FAILED: f"Upgrade of {app} to {target} failed",
        NoticeKind.RELEASE_HELD: f"FluxUp holds {app} at the gate ({target})",
        NoticeKind.GATE_BYPASSED: f"The FluxUp gate was bypassed for {app}",
        NoticeKind.ROLLBACK_SUCCEEDED: f"Rolled back {app} to {target}",
        NoticeKind.ROLLBACK_FAILED: f"Rollback of {app} failed",
    }
    lines = [f"{notice.subject.kind} {notice.subject.namespace}/{notice.subject.name}: "
             f"{_versions(notice)}"]
    if notice.request:
        lines.append(f"Request: {notice.request}")
    if notice.origin:
        lines.append(f"Triggered by: {notice.origin}")
    if notice.duration_seconds is not None:
        lines.append(f"Duration: {_span(notice.duration_seconds)}")
    if notice.snapshots:
        lines.append("Snapshots: " + ", ".join(notice.snapshots))
    if notice.detail:
        lines.append(notice.detail)
    if notice.kind is NoticeKind.RELEASE_HELD:
        lines.append("It is released once its pre-upgrade snapshots are ReadyToUse.")
    if ui_url:
        base = ui_url.rstrip("/")
        namespace, _, name = app.partition("/")
        action = {
            NoticeKind.UPDATE_AVAILABLE: "upgrade",
            NoticeKind.UPGRADE_FAILED: "rollback",
        }.get(notice.kind, "")
        lines.append(f"{base}/apps/{namespace}/{name}" + (f"/{action}" if action else ""))
    return titles[notice.kind], "\n".join(lines)


class FluxObjectReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    namespace: str
    uid: str


class FluxEvent(TypedDict):
    """``event.toolkit.fluxcd.io`` Event (v1beta1), as the controllers POST it."""

    involvedObject: FluxObjectReference
    severity: Literal["info", "error"]
    timestamp: str
    message: str
    reason: str
    metadata: dict[str, str]
    reportingController: str
    reportingInstance: str


def build_flux_event(notice: Notice, now: dt.datetime, instance: str) -> FluxEvent:
    """The notice as an event for notification-controller's events endpoint."""
    ref: FluxObjectReference = {
        "apiVersion": notice.subject.api_version,
        "kind": notice.subject.kind,
        "name": notice.subject.name,
        "namespace": notice.subject.namespace,
    }
    if notice.subject.uid:
        ref["uid"] = notice.subject.uid
    group = notice.subject.api_version.partition("/")[0] if "/" in notice.subject.api_version \
        else HELM_GROUP
    metadata = {f"{group}/fluxup.app": notice.app}
    if notice.to_version:
        metadata["revision"] = notice.to_version
        metadata[f"{group}/fluxup.version"] = notice.to_version
    if notice.from_version:
        metadata[f"{group}/fluxup.previousVersion"] = notice.from_version
    if notice.request:
        metadata[f"{group}/fluxup.request"] = notice.request
    if notice.snapshots:
        metadata[f"{group}/fluxup.snapshots"] = ",".join(notice.snapshots)
    title, body = build_text(notice)
    return {
        "involvedObject": ref,
        "severity": severity_of(notice.kind),
        "timestamp": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "message": f"{title}\n{body}"[:39000],
        "reason": str(notice.kind),
        "metadata": metadata,
        "reportingController": CONTROLLER,
        "reportingInstance": instance,
    }
