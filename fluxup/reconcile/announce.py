"""Turn the reconcilers' transitions into notices: metrics, notifications, Flux events.

The reconcilers call one function here at a transition (an upgrade started or ended,
the gate held or was bypassed, an update became available, a rollback ended) and go
on: :func:`announce` counts the notice in the operator's metrics and, when the app's
``spec.notifications`` want it, hands the rendered message to the notifier, which
delivers it in the background. Nothing here waits for a receiver or raises because of
one; a notice is at-least-once (a crash between the announcement and the status write
repeats it).
"""

from __future__ import annotations

import logging
import socket

from fluxup.adapters.kube import Obj, R
from fluxup.adapters.notify import Message
from fluxup.api.managedapp import ManagedApp
from fluxup.api.meta import Identity
from fluxup.api.upgraderequest import UpgradePhase, UpgradeRequest, UpgradeRequestStatus
from fluxup.errors import KubeError
from fluxup.logic.notices import (
    Notice,
    NoticeKind,
    NoticePrefs,
    Subject,
    build_flux_event,
    build_text,
    describe_identity,
    is_wanted,
    level_of,
)
from fluxup.reconcile.context import Context

__all__ = [
    "ANNOUNCED_UPDATE",
    "announce",
    "announce_available",
    "announce_bypass",
    "announce_hold",
    "announce_upgrade",
    "build_app_subject",
    "build_prefs",
]

log = logging.getLogger(__name__)

#: Annotation on a ManagedApp: the available update already announced (once per version).
ANNOUNCED_UPDATE = "fluxup.dev/announced-update"

_RESULTS = {
    NoticeKind.UPGRADE_SUCCEEDED: ("upgrade", "succeeded"),
    NoticeKind.UPGRADE_FAILED: ("upgrade", "failed"),
    NoticeKind.ROLLBACK_SUCCEEDED: ("rollback", "succeeded"),
    NoticeKind.ROLLBACK_FAILED: ("rollback", "failed"),
}


def announce(ctx: Context, notice: Notice) -> None:
    """Count ``notice`` and, if the app wants it, deliver it in the background."""
    metrics = ctx.metrics
    if metrics is not None:
        if notice.kind in _RESULTS:
            metrics.observe_operation(*_RESULTS[notice.kind], notice.duration_seconds)
        elif notice.kind is NoticeKind.UPGRADE_STARTED:
            metrics.started.labels(notice.origin or "unknown").inc()
        elif notice.kind is NoticeKind.RELEASE_HELD:
            metrics.holds.inc()
        elif notice.kind is NoticeKind.GATE_BYPASSED:
            metrics.bypasses.inc()
    if ctx.notifier is None or not is_wanted(notice):
        return
    title, body = build_text(notice, ctx.settings.ui_url)
    event = build_flux_event(notice, ctx.now(), socket.gethostname())
    ctx.notifier.submit(Message(title, body, level_of(notice.kind), event))


def build_prefs(app: ManagedApp | None) -> NoticePrefs:
    if app is None:
        return NoticePrefs()
    n = app.spec.notifications
    return NoticePrefs(on_available=n.on_available, on_upgrade=n.on_upgrade,
                       on_failure=n.on_failure)


def build_app_subject(app: ManagedApp) -> Subject:
    """The app's HelmRelease (what Flux Alerts select events by)."""
    info = app.status.helm_release
    ref = app.spec.helm_release_ref
    return Subject(
        kind="HelmRelease",
        namespace=ref.namespace_or(app.metadata.namespace or ""),
        name=ref.name,
        api_version=info.api_version if info else "helm.toolkit.fluxcd.io/v2",
    )


def _identity(identity: Identity | None) -> str | None:
    if identity is None:
        return None
    return describe_identity(identity.version, [(i.values_path, i.tag) for i in identity.images])


def _app_key(app: ManagedApp) -> str:
    return f"{app.metadata.namespace}/{app.metadata.name}"


def announce_upgrade(
    ctx: Context,
    ur: UpgradeRequest,
    app: ManagedApp | None,
    before: UpgradePhase,
    status: UpgradeRequestStatus,
) -> None:
    """Announce the transition ``before`` → ``status.phase`` if it is one people hear of:
    the upgrade started (left Pending/Queued), succeeded or failed. Dry runs are quiet."""
    after = status.phase
    if ur.spec.dry_run or app is None or after is None or after is before:
        return
    P = UpgradePhase
    if after is P.SUCCEEDED:
        kind = NoticeKind.UPGRADE_SUCCEEDED
    elif after is P.FAILED:
        kind = NoticeKind.UPGRADE_FAILED
    elif before in (P.PENDING, P.QUEUED) and after is not P.QUEUED:
        kind = NoticeKind.UPGRADE_STARTED
    else:
        return
    target = _identity(status.target_identity) or describe_identity(
        ur.spec.target_version, [(i.values_path, i.tag) for i in ur.spec.target_images]
    )
    duration = None
    if status.completed_at and status.started_at:
        duration = (status.completed_at - status.started_at).total_seconds()
    announce(
        ctx,
        Notice(
            kind=kind,
            app=_app_key(app),
            subject=build_app_subject(app),
            from_version=_identity(status.previous_identity) or app.status.current_version,
            to_version=target,
            request=f"{ur.metadata.namespace}/{ur.metadata.name}",
            detail=status.message if kind is NoticeKind.UPGRADE_FAILED else None,
            origin=str(ur.spec.origin),
            duration_seconds=duration,
            snapshots=tuple(s.name for s in status.snapshots),
            prefs=build_prefs(app),
        ),
    )


async def announce_available(ctx: Context, obj: Obj, app: ManagedApp) -> None:
    """Announce ``status.availableUpdate`` once per version (remembered in the
    :data:`ANNOUNCED_UPDATE` annotation, so restarts do not repeat it)."""
    update = app.status.available_update
    if update is None:
        return
    text = describe_identity(update.version, [(i.values_path, i.tag) for i in update.images])
    if text is None:
        return
    notes = (obj.get("metadata") or {}).get("annotations") or {}
    if notes.get(ANNOUNCED_UPDATE) == text:
        return
    try:
        await ctx.kube.merge_patch(
            R.MANAGEDAPP, app.metadata.namespace, app.metadata.name or "",
            {"metadata": {"annotations": {ANNOUNCED_UPDATE: text}}},
        )
    except KubeError as exc:  # announce next pass rather than twice
        log.warning("could not remember the announced update of %s: %s", _app_key(app), exc)
        return
    announce(
        ctx,
        Notice(
            kind=NoticeKind.UPDATE_AVAILABLE,
            app=_app_key(app),
            subject=build_app_subject(app),
            from_version=app.status.current_version,
            to_version=text,
            detail=f"{update.type} update" if update.type else None,
            prefs=build_prefs(app),
        ),
    )



def _subject_of(obj: Obj) -> Subject:
    meta = obj.get("metadata") or {}
    return Subject(
        kind=str(obj.get("kind") or "HelmRelease"),
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        api_version=str(obj.get("apiVersion") or "helm.toolkit.fluxcd.io/v2"),
        uid=meta.get("uid"),
    )


def announce_hold(ctx: Context, obj: Obj, app: str, held: str | None, request: str) -> None:
    """The gate holds ``obj`` (a HelmRelease or OCIRepository of ``app``, ``ns/name``)
    at ``held`` and ``request`` takes care of it."""
    announce(
        ctx,
        Notice(kind=NoticeKind.RELEASE_HELD, app=app, subject=_subject_of(obj),
               to_version=held, request=request, origin="git"),
    )


def announce_bypass(ctx: Context, obj: Obj, reason: str, held: str | None) -> None:
    """Someone released ``obj`` past the gate with ``fluxup.dev/bypass: <reason>``."""
    meta = obj.get("metadata") or {}
    app = ((meta.get("labels") or {}).get("fluxup.dev/managed-app")) or str(meta.get("name"))
    announce(
        ctx,
        Notice(kind=NoticeKind.GATE_BYPASSED, app=f"{meta.get('namespace')}/{app}",
               subject=_subject_of(obj), to_version=held,
               detail=f"Released without pre-upgrade snapshots; reason given: {reason}"),
    )
