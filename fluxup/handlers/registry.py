"""kopf handlers: parse, call one reconcile function, translate errors. Nothing else.

:func:`register` adds every handler to a kopf registry at start-up, with intervals
from :class:`~fluxup.settings.Settings` (so nothing is decided at import time). The
same reconcile function runs on every watch event and on a timer (level-triggered);
a per-object lock keeps an event and a timer from reconciling one object at once.
Each ManagedApp's idle resync starts at its own phase of the interval
(:func:`resync_phase`), so a fleet whose timers began together (every app seen at
start-up) is resynced evenly rather than in one wave each interval.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from fluxup.adapters.kube import R, Resource
from fluxup.api import annotations as ann
from fluxup.api.constants import GROUP, VERSION
from fluxup.errors import FluxUpError, InvalidObjectError
from fluxup.reconcile.bypass import record_bypass
from fluxup.reconcile.context import Context
from fluxup.reconcile.holds import ensure_request_for_hold
from fluxup.reconcile.managedapp import reconcile_managedapp
from fluxup.reconcile.rollback import is_in_flight as rollback_in_flight
from fluxup.reconcile.rollback import reconcile_rollback
from fluxup.reconcile.upgrade import is_in_flight, reconcile_upgrade
from fluxup.settings import Settings

__all__ = ["register", "resync_phase"]

log = logging.getLogger(__name__)

Reconciler = Callable[[Context, dict[str, Any]], Awaitable[Any]]


async def _guarded(
    ctx: Context, body: Any, reconcile: Reconciler, what: str, resource: Resource
) -> None:
    meta = body.get("metadata") or {}
    key = f"{what}/{meta.get('namespace')}/{meta.get('name')}"
    async with ctx.lock(key):
        try:
            # decide from the object as it is now, never from a possibly stale event body
            fresh = await ctx.kube.find(resource, meta.get("namespace"), str(meta.get("name")))
            if fresh is None:
                return
            await reconcile(ctx, fresh)
        except InvalidObjectError as exc:
            log.error("%s is invalid and is left alone: %s", key, exc)
        except FluxUpError as exc:
            raise kopf.TemporaryError(f"{key}: {exc}", delay=5) from None


def resync_phase(uid: str, interval: float) -> float:
    """Seconds in ``[0, interval)`` an object's first idle resync waits: stable per object
    (its uid), spread evenly over the fleet."""
    fraction = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], "big") / 2**64
    return fraction * interval


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    """Add FluxUp's handlers to ``registry``."""

    @kopf.on.event(GROUP, VERSION, "managedapps", registry=registry)
    async def managedapp_event(type: str | None, body: Any, memo: Any, **_: Any) -> None:
        if type != "DELETED":
            await _guarded(memo.ctx, body, reconcile_managedapp, "managedapp", R.MANAGEDAPP)

    @kopf.timer(
        GROUP, VERSION, "managedapps", interval=settings.idle_resync_seconds, registry=registry
    )
    async def managedapp_timer(body: Any, memo: Any, **_: Any) -> None:
        # ``memo`` is this object's own copy of the operator's; the watch event already
        # reconciled the app when it was first seen, so waiting here loses nothing
        if not memo.get("resync_phased"):
            memo["resync_phased"] = True
            uid = str((body.get("metadata") or {}).get("uid") or "")
            await asyncio.sleep(resync_phase(uid, settings.idle_resync_seconds))
        await _guarded(memo.ctx, body, reconcile_managedapp, "managedapp", R.MANAGEDAPP)

    @kopf.on.event(GROUP, VERSION, "upgraderequests", registry=registry)
    async def upgrade_event(type: str | None, body: Any, memo: Any, **_: Any) -> None:
        if type != "DELETED":
            await _guarded(memo.ctx, body, reconcile_upgrade, "upgraderequest", R.UPGRADEREQUEST)

    @kopf.timer(
        GROUP,
        VERSION,
        "upgraderequests",
        interval=settings.active_poll_seconds,
        when=lambda body, **_: is_in_flight(dict(body)),
        registry=registry,
    )
    async def upgrade_timer(body: Any, memo: Any, **_: Any) -> None:
        await _guarded(memo.ctx, body, reconcile_upgrade, "upgraderequest", R.UPGRADEREQUEST)

    @kopf.on.event(GROUP, VERSION, "rollbackrequests", registry=registry)
    async def rollback_event(type: str | None, body: Any, memo: Any, **_: Any) -> None:
        if type != "DELETED":
            await _guarded(memo.ctx, body, reconcile_rollback, "rollbackrequest",
                           R.ROLLBACKREQUEST)

    @kopf.timer(
        GROUP,
        VERSION,
        "rollbackrequests",
        interval=settings.active_poll_seconds,
        when=lambda body, **_: rollback_in_flight(dict(body)),
        registry=registry,
    )
    async def rollback_timer(body: Any, memo: Any, **_: Any) -> None:
        await _guarded(memo.ctx, body, reconcile_rollback, "rollbackrequest", R.ROLLBACKREQUEST)

    # holds get an UpgradeRequest; emergency bypasses get audited
    flux_reactions = ((ann.HELD, ensure_request_for_hold, "hold"),
                      (ann.BYPASS, record_bypass, "bypass"))
    for res in (R.HELMRELEASE, R.OCIREPOSITORY):
        for annotation, reconcile, what in flux_reactions:

            @kopf.on.event(
                res.group,
                res.version,
                res.plural,
                labels={ann.MANAGED_APP_LABEL: kopf.PRESENT},
                annotations={annotation: kopf.PRESENT},
                id=f"{what}-{res.plural}",
                registry=registry,
            )
            async def flux_event(
                type: str | None, body: Any, memo: Any, flux_res: Resource = res,
                react: Reconciler = reconcile, kind: str = what, **_: Any,
            ) -> None:
                if type != "DELETED":
                    await _guarded(memo.ctx, body, react, kind, flux_res)
