"""The HTML pages: inbox, app detail, upgrade confirmation, progress, rollback,
snapshots, settings.

Registered by :func:`fluxup.ui.app.build_app`. Each handler loads through
:mod:`fluxup.ui.service` as the logged-in user and renders one template; forms post
back here (CSRF-checked by the middleware) and redirect to the page that follows
(post/redirect/get). Errors (403 from RBAC, 404, bad input) are turned into pages by
the error middleware in :mod:`fluxup.ui.app`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

from aiohttp import web

from fluxup.adapters.impersonation import UserKube
from fluxup.adapters.kube import R
from fluxup.api.upgraderequest import TERMINAL_UPGRADE_PHASES, UpgradeRequest
from fluxup.errors import ConfigError
from fluxup.logic.inbox import (
    Inbox,
    InboxQuery,
    build_values_diff,
    filter_inbox,
    group_updates,
    is_in_flight,
    parse_inbox_query,
)
from fluxup.logic.maintenance_window import determine_window
from fluxup.logic.operations import build_data_loss_warning
from fluxup.logic.paging import build_page
from fluxup.ui import service
from fluxup.ui.auth import user_of
from fluxup.ui.keys import (
    AUDIT,
    CLOCK,
    IMPERSONATOR,
    INBOX_CACHE,
    OPERATOR_KUBE,
    OPERATOR_SETTINGS,
    SETTINGS,
)
from fluxup.ui.listcache import identity_key
from fluxup.ui.render import page

__all__ = ["dashboard_context", "kube_of", "load_inbox", "routes"]

routes = web.RouteTableDef()


def kube_of(request: web.Request) -> UserKube:
    user = user_of(request)
    return request.app[IMPERSONATOR].as_user(user.name, user.groups)


def _ns_name(request: web.Request) -> tuple[str, str]:
    return request.match_info["ns"], request.match_info["name"]


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


async def load_inbox(request: web.Request, query: InboxQuery) -> Inbox:
    """The inbox as the caller sees it, filtered; the lists come from the caller's own
    short-lived cache entry when one is fresh (:mod:`fluxup.ui.listcache`)."""
    user = user_of(request)
    kube = kube_of(request)
    inbox = await request.app[INBOX_CACHE].get(
        identity_key(user.name, user.groups, query.namespace),
        lambda: service.load_inbox(kube, query.namespace, request.app.get(OPERATOR_KUBE)))
    return filter_inbox(inbox, query.state)


def dashboard_context(inbox: Inbox, query: InboxQuery) -> dict[str, Any]:
    """What ``dashboard.html`` renders: one page of apps and one of updates."""
    updates = build_page(inbox.update_list, query.updates_page, query.per_page)
    return {"inbox": inbox, "q": query, "updates": updates,
            "update_groups": group_updates(updates.items),
            "apps": build_page(inbox.rows, query.page, query.per_page),
            "held": build_page(inbox.held, 1, query.per_page)}


@routes.get("/")
async def dashboard(request: web.Request) -> web.Response:
    query = parse_inbox_query(request.query)  # a bad ?page= is a 400 before any list
    inbox = await load_inbox(request, query)
    return page(request, "dashboard.html", **dashboard_context(inbox, query))


@routes.get("/apps/{ns}/{name}")
async def app_detail(request: web.Request) -> web.Response:
    ns, name = _ns_name(request)
    detail, snapshots = await asyncio.gather(service.load_app(kube_of(request), ns, name),
                                             service.load_snapshots(kube_of(request), ns, name))
    window = determine_window(detail.app.spec.version_policy.maintenance_window,
                              dt.datetime.now(dt.UTC))
    return page(request, "app.html", d=detail, app=detail.app, snapshots=snapshots,
                window=window)


@routes.post("/apps/{ns}/{name}/preview")
async def preview(request: web.Request) -> web.Response:
    """Start a dry-run UpgradeRequest: it produces the exact Git diff to confirm."""
    ns, name = _ns_name(request)
    data = await _form(request)
    body: dict[str, object] = {"version": data.get("version") or None, "dryRun": True}
    if data.get("image_path") and data.get("image_tag"):
        body["images"] = {data["image_path"]: data["image_tag"]}
    created = await service.start_upgrade(kube_of(request), request.app[AUDIT], ns, name,
                                          body, user_of(request).name)
    raise web.HTTPSeeOther(f"/upgrades/{ns}/{created.metadata.name}/confirm")


def _confirm_context(up: UpgradeRequest) -> dict[str, Any]:
    return {"up": up, "ready": up.status.phase in TERMINAL_UPGRADE_PHASES,
            "values_diff": build_values_diff(up.status.previous_identity,
                                             up.status.target_identity)}


@routes.get("/upgrades/{ns}/{name}/confirm")
async def confirm(request: web.Request) -> web.Response:
    ns, name = _ns_name(request)
    up = UpgradeRequest.from_dict(await kube_of(request).get(R.UPGRADEREQUEST, ns, name))
    if not up.spec.dry_run:
        raise web.HTTPSeeOther(f"/upgrades/{ns}/{name}")
    detail = await service.load_app(kube_of(request), ns, up.spec.managed_app_ref.name)
    template = "_confirm.html" if "HX-Request" in request.headers else "confirm.html"
    return page(request, template, app=detail.app, **_confirm_context(up))


@routes.post("/apps/{ns}/{name}/upgrade")
async def upgrade(request: web.Request) -> web.Response:
    ns, name = _ns_name(request)
    data = await _form(request)
    body: dict[str, object] = {"version": data.get("version") or None}
    images = {k.removeprefix("image:"): v for k, v in data.items() if k.startswith("image:")}
    if images:
        body["images"] = images
    created = await service.start_upgrade(kube_of(request), request.app[AUDIT], ns, name,
                                          body, user_of(request).name)
    raise web.HTTPSeeOther(f"/upgrades/{ns}/{created.metadata.name}")


@routes.get("/upgrades/{ns}/{name}")
@routes.get("/rollbacks/{ns}/{name}")
async def progress(request: web.Request) -> web.Response:
    ns, name = _ns_name(request)
    kind = request.path.split("/")[1]
    req = await service.load_request(kube_of(request), kind, ns, name)
    return page(request, "progress.html", req=req, kind=kind, live=is_in_flight(req))


@routes.get("/apps/{ns}/{name}/rollback")
async def rollback_form(request: web.Request) -> web.Response:
    ns, name = _ns_name(request)
    detail = await service.load_app(kube_of(request), ns, name)
    now = request.app[CLOCK]()
    choices = [(s, build_data_loss_warning(s, ns, now)) for s in detail.snapshot_sets]
    chosen = request.query.get("upgrade")
    return page(request, "rollback.html", app=detail.app, choices=choices, chosen=chosen)


@routes.post("/apps/{ns}/{name}/rollback")
async def rollback(request: web.Request) -> web.Response:
    ns, _ = _ns_name(request)
    data = await _form(request)
    if data.get("confirm") != "yes":
        raise ConfigError("tick the box that confirms you accept the data loss")
    created = await service.start_rollback(kube_of(request), request.app[AUDIT], ns,
                                           {"upgradeRequest": data.get("upgrade_request")},
                                           user_of(request).name)
    raise web.HTTPSeeOther(f"/rollbacks/{ns}/{created.metadata.name}")


@routes.get("/snapshots")
async def snapshots(request: web.Request) -> web.Response:
    rows = await service.load_snapshots(kube_of(request), request.query.get("namespace"))
    return page(request, "snapshots.html", rows=rows)


@routes.post("/snapshots/{ns}/{name}/delete")
async def snapshot_delete(request: web.Request) -> web.Response:
    ns, name = _ns_name(request)
    data = await _form(request)
    if data.get("confirm") != name:
        raise ConfigError(f"type the snapshot's name ({name}) to confirm deleting it")
    await service.delete_snapshot(kube_of(request), request.app[AUDIT], ns, name,
                                  user_of(request).name)
    raise web.HTTPSeeOther("/snapshots")


@routes.get("/settings")
async def settings(request: web.Request) -> web.Response:
    ui = request.app[SETTINGS]
    shown = {f.name: getattr(ui, f.name) for f in dataclasses.fields(ui)
             if f.name not in ("session_keys", "oidc_client_secret")}
    shown["session_keys"] = f"{len(ui.session_keys)} key(s) configured"
    shown["oidc_client_secret"] = "set" if ui.oidc_client_secret else "not set"
    can_upgrade = await kube_of(request).can("create", R.UPGRADEREQUEST, None)
    return page(request, "settings.html", ui=shown, operator=request.app[OPERATOR_SETTINGS],
                can_upgrade=can_upgrade)
