"""Start the upgrade a ManagedApp's ``autoUpdate`` policy allows, one at a time.

Called by :mod:`fluxup.reconcile.renovate` after a scan decided an ``auto_target`` (the
highest candidate within the policy's ``autoUpdate`` level and ``constraint``), and on the
ManagedApp's timer (:func:`ensure_due_auto_upgrade`, for upgrades held back). It creates
an UpgradeRequest (``origin: renovate``) with an explicit target, so the request upgrades
to exactly what was decided, and then the normal path runs: commit to Git, the gate holds,
snapshots, release. Rules:

* never two at once: nothing is created while the app has an active request, or any
  UpgradeRequest of the app is not finished;
* never the same target twice: the request's name is derived from the app and the target,
  so a failed automatic upgrade is not retried on its own (a person decides), and a crash
  between decision and creation makes the same request again, not a second one;
* only inside the ``versionPolicy.maintenanceWindow`` when one is set
  (:mod:`fluxup.logic.maintenance_window`); outside it nothing starts, and the timer
  starts the same target once the window opens;
* a suspended ManagedApp starts nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging

from fluxup.adapters.kube import R
from fluxup.api import annotations as ann
from fluxup.api._codec import encode
from fluxup.api.constants import API_VERSION, UPGRADE_REQUEST
from fluxup.api.managedapp import ManagedApp
from fluxup.api.meta import Identity
from fluxup.api.upgraderequest import TERMINAL_UPGRADE_PHASES
from fluxup.errors import InvalidObjectError, KubeConflict
from fluxup.logic.maintenance_window import determine_window
from fluxup.logic.snapshots import label_safe
from fluxup.logic.version_policy import determine_auto_target
from fluxup.reconcile.context import Context

__all__ = ["build_auto_request_name", "ensure_auto_upgrade", "ensure_due_auto_upgrade"]

log = logging.getLogger(__name__)


def build_auto_request_name(app: str, target: Identity) -> str:
    """``<app>-auto-<hash of the target>``: one request per app and target, ever."""
    digest = hashlib.sha256(json.dumps(encode(target), sort_keys=True).encode()).hexdigest()
    return f"{app[:40].rstrip('-.')}-auto-{digest[:10]}"


async def ensure_auto_upgrade(ctx: Context, namespace: str, app_name: str,
                              target: Identity) -> str | None:
    """Create the automatic UpgradeRequest for ``target``; its name, or ``None`` when
    nothing was started (busy, suspended, outside the maintenance window, or this target
    was already tried). One app's decisions are serialized (scan and timer)."""
    async with ctx.lock(f"auto-update/{namespace}/{app_name}"):
        return await _ensure_auto_upgrade(ctx, namespace, app_name, target)


async def ensure_due_auto_upgrade(ctx: Context, app: ManagedApp) -> str | None:
    """Start what ``autoUpdate`` allows from the candidates in ``app``'s status, if it may
    start now. Called on the ManagedApp's timer: an upgrade the maintenance window (or a
    request in flight) held back at scan time starts once it can, without a new scan."""
    policy = app.spec.version_policy
    if app.spec.suspend or not determine_window(policy.maintenance_window, ctx.now()).open:
        return None
    if determine_auto_target(app) is None:
        return None
    namespace, name = app.metadata.namespace or "", app.metadata.name
    fresh = await ctx.kube.find(R.MANAGEDAPP, namespace, name)  # what runs now, after the pass
    if fresh is None:
        return None
    target = determine_auto_target(ManagedApp.from_dict(fresh))
    return None if target is None else await ensure_auto_upgrade(ctx, namespace, name, target)


async def _ensure_auto_upgrade(ctx: Context, namespace: str, app_name: str,
                               target: Identity) -> str | None:
    app = await ctx.kube.find(R.MANAGEDAPP, namespace, app_name)
    if app is None or (app.get("spec") or {}).get("suspend"):
        return None
    if (app.get("status") or {}).get("activeRequest"):
        return None
    try:
        window = ManagedApp.from_dict(app).spec.version_policy.maintenance_window
    except InvalidObjectError:
        return None
    if not determine_window(window, ctx.now()).open:
        return None  # the ManagedApp timer starts it when the window opens
    name = build_auto_request_name(app_name, target)
    terminal = {p.value for p in TERMINAL_UPGRADE_PHASES}
    for request in await ctx.kube.list(R.UPGRADEREQUEST, namespace):
        if (request.get("spec") or {}).get("managedAppRef", {}).get("name") != app_name:
            continue
        if request["metadata"]["name"] == name:
            return None  # tried before (or running): a person decides about a retry
        if (request.get("status") or {}).get("phase") not in terminal:
            return None  # one operation at a time
    spec: dict[str, object] = {"managedAppRef": {"name": app_name}, "origin": "renovate"}
    if target.version:
        spec["targetVersion"] = target.version
    if target.images:
        spec["targetImages"] = [encode(i) for i in target.images]
    body = {
        "apiVersion": API_VERSION,
        "kind": UPGRADE_REQUEST.kind,
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {ann.MANAGED_APP_LABEL: label_safe(app_name)}},
        "spec": spec,
    }
    try:
        await ctx.kube.create(R.UPGRADEREQUEST, namespace, body)
    except KubeConflict:
        return None
    what = ", ".join(([f"chart {target.version}"] if target.version else [])
                     + [f"{i.values_path} {i.tag}" for i in target.images])
    log.info("autoUpdate: created UpgradeRequest %s/%s for %s", namespace, name, what)
    await ctx.events.record(app, "AutoUpdateStarted",
                            f"versionPolicy.autoUpdate allows {what}; created UpgradeRequest "
                            f"{name}")
    return name
