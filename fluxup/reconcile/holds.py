"""Give every hold of the admission gate an UpgradeRequest (``origin: git``).

Called by :mod:`fluxup.handlers.registry` on every watch event of a labelled HelmRelease
or OCIRepository (so the operator reacts to a hold within a second) and, level-triggered,
by the ManagedApp reconciler on every pass and timer tick for the app's own release and
chart source (so a missed event or a failed API call never strands a hold).
:func:`fluxup.logic.hold_requests.determine_hold_handling` decides; this module reads the
requests and creates the missing one. Its name is deterministic (app + hash of the held
identity), so a crash or a duplicate event never makes a second audit object.
"""

from __future__ import annotations

import logging

from fluxup.adapters.kube import Obj, R
from fluxup.api import annotations as ann
from fluxup.api.constants import ROLLBACK_REQUEST
from fluxup.errors import KubeConflict
from fluxup.logic.hold_requests import (
    HoldHandling,
    HoldState,
    build_hold_request,
    determine_hold_handling,
)
from fluxup.logic.identity import Identity, approved_identity, parse_identity
from fluxup.reconcile.announce import announce_hold
from fluxup.reconcile.context import Context

__all__ = ["ensure_hold_handled", "ensure_request_for_hold", "unapproved_hold"]

log = logging.getLogger(__name__)


def unapproved_hold(obj: Obj) -> Identity | None:
    """The identity the gate holds on ``obj`` and nobody approved yet, if any."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(ann.HELD)
    if not text:
        return None
    try:
        held = parse_identity(text)
    except ValueError:
        log.warning("unreadable %s on %s", ann.HELD, (obj.get("metadata") or {}).get("name"))
        return None
    return None if held == approved_identity(obj) else held


async def _find_app(ctx: Context, obj: Obj) -> Obj | None:
    """The ManagedApp whose HelmRelease is ``obj`` (or uses ``obj`` as chart source)."""
    name = ((obj.get("metadata") or {}).get("labels") or {}).get(ann.MANAGED_APP_LABEL)
    namespace = obj["metadata"]["namespace"]
    for app in await ctx.kube.list(R.MANAGEDAPP, None):
        if app["metadata"]["name"] != name:
            continue
        status = app.get("status") or {}
        hr = status.get("helmRelease") or {}
        source = status.get("chartSource") or {}
        if (
            obj.get("kind") == "HelmRelease"
            and hr.get("name") == obj["metadata"]["name"]
            and hr.get("namespace") == namespace
        ):
            return app
        if (
            obj.get("kind") == "OCIRepository"
            and source.get("name") == obj["metadata"]["name"]
            and source.get("namespace") == namespace
        ):
            return app
        if app["metadata"]["namespace"] == namespace and not hr:
            return app
    return None


async def ensure_hold_handled(ctx: Context, app_obj: Obj, obj: Obj) -> HoldHandling | None:
    """Make sure the hold on ``obj`` (the app's HelmRelease or OCIRepository) is handled;
    ``None`` when nothing unapproved is held or the app is suspended."""
    held = unapproved_hold(obj)
    if held is None or (app_obj.get("spec") or {}).get("suspend"):
        return None  # a suspended ManagedApp starts nothing new; the gate keeps holding
    active = (app_obj.get("status") or {}).get("activeRequest") or {}
    if active.get("kind") == ROLLBACK_REQUEST.kind:
        return None  # a rollback in flight approves the version it returns to itself
    app_name, app_ns = app_obj["metadata"]["name"], app_obj["metadata"]["namespace"]
    requests = await ctx.kube.list(R.UPGRADEREQUEST, app_ns)
    handling = determine_hold_handling(
        requests, app_name, held, is_oci=obj.get("kind") == "OCIRepository",
        last_upgrade=(app_obj.get("status") or {}).get("lastUpgrade"),
    )
    if handling.state is not HoldState.MISSING:
        return handling
    try:
        await ctx.kube.create(R.UPGRADEREQUEST, app_ns, build_hold_request(app_name, app_ns, held))
    except KubeConflict:
        return handling  # created meanwhile (or ended: it keeps its deterministic name)
    await ctx.events.record(
        obj,
        "HoldDetected",
        f"FluxUp holds {held.describe()}; created UpgradeRequest {app_ns}/{handling.request}",
    )
    announce_hold(
        ctx, obj, f"{app_ns}/{app_name}", held.describe(), f"{app_ns}/{handling.request}"
    )
    return handling


async def ensure_request_for_hold(ctx: Context, obj: Obj) -> str | None:
    """Watch reaction: the name of the request handling ``obj``'s hold (created if
    needed), ``None`` when nothing is held or no ManagedApp claims ``obj``."""
    if unapproved_hold(obj) is None:
        return None
    app = await _find_app(ctx, obj)
    if app is None:
        return None
    handling = await ensure_hold_handled(ctx, app, obj)
    return handling.request if handling is not None else None
