"""Give every hold of the admission gate an UpgradeRequest (``origin: git``).

Called by :mod:`fluxup.handlers.flux` on every watch event of a labelled HelmRelease or
OCIRepository, so the operator reacts to a hold within a second. If the held identity is
not yet approved and no in-flight request of the app targets it, a request with a
deterministic name (app + hash of the held identity) is created; creating it twice is
impossible, so a crash or a duplicate event never makes a second audit object.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from fluxup.adapters.kube import Obj, R
from fluxup.api import annotations as ann
from fluxup.api.constants import API_VERSION, UPGRADE_REQUEST
from fluxup.api.upgraderequest import TERMINAL_UPGRADE_PHASES
from fluxup.errors import KubeConflict
from fluxup.logic.identity import Identity, parse_identity
from fluxup.logic.snapshots import label_safe
from fluxup.reconcile.announce import announce_hold
from fluxup.reconcile.context import Context

__all__ = ["build_hold_request_name", "ensure_request_for_hold"]

log = logging.getLogger(__name__)


def build_hold_request_name(app: str, held: Identity) -> str:
    digest = hashlib.sha256(held.to_json().encode()).hexdigest()[:10]
    return f"{app[:40].rstrip('-.')}-git-{digest}"


def _phase(obj: Obj) -> str | None:
    return (obj.get("status") or {}).get("phase")


def _targets(request: Obj, held: Identity, is_oci: bool) -> bool:
    status_target = (request.get("status") or {}).get("targetIdentity") or {}
    spec = request.get("spec") or {}
    version = status_target.get("version") or spec.get("targetVersion")
    if held.chart is not None:
        return bool(version) and str(version).lstrip("v=") == held.chart.lstrip("v=")
    images = {
        i.get("valuesPath"): i.get("tag")
        for i in (status_target.get("images") or spec.get("targetImages") or [])
    }
    return all(images.get(path) == tag for path, tag in held.images) and not is_oci


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


async def ensure_request_for_hold(ctx: Context, obj: Obj) -> str | None:
    """Return the name of the request handling ``obj``'s hold (creating one if needed)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(ann.HELD)
    if not text or text == annotations.get(ann.APPROVED):
        return None
    try:
        held = parse_identity(text)
    except ValueError:
        log.warning("unreadable %s on %s", ann.HELD, obj["metadata"]["name"])
        return None
    app = await _find_app(ctx, obj)
    if app is None or (app.get("spec") or {}).get("suspend"):
        return None  # a suspended ManagedApp starts nothing new; the gate keeps holding
    app_name, app_ns = app["metadata"]["name"], app["metadata"]["namespace"]
    is_oci = obj.get("kind") == "OCIRepository"
    for request in await ctx.kube.list(R.UPGRADEREQUEST, app_ns):
        if (request.get("spec") or {}).get("managedAppRef", {}).get("name") != app_name:
            continue
        if _phase(request) in {p.value for p in TERMINAL_UPGRADE_PHASES}:
            continue
        if _targets(request, held, is_oci):
            return str(request["metadata"]["name"])
    name = build_hold_request_name(app_name, held)
    spec: dict[str, Any] = {"managedAppRef": {"name": app_name}, "origin": "git"}
    if held.chart is not None:
        spec["targetVersion"] = held.chart
    if held.images:
        spec["targetImages"] = [
            {"valuesPath": p, "tag": t} for p, t in held.images if t is not None
        ]
    body = {
        "apiVersion": API_VERSION,
        "kind": UPGRADE_REQUEST.kind,
        "metadata": {
            "name": name,
            "namespace": app_ns,
            "labels": {ann.MANAGED_APP_LABEL: label_safe(app_name)},
        },
        "spec": spec,
    }
    try:
        await ctx.kube.create(R.UPGRADEREQUEST, app_ns, body)
    except KubeConflict:
        return name
    await ctx.events.record(
        obj,
        "HoldDetected",
        f"FluxUp holds {held.describe()}; created UpgradeRequest {app_ns}/{name}",
    )
    announce_hold(ctx, obj, f"{app_ns}/{app_name}", held.describe(), f"{app_ns}/{name}")
    return name
