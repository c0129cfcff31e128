"""The JSON API (``/api/...``), described by the OpenAPI document at ``/api/openapi.json``.

Registered by :func:`fluxup.ui.app.build_app`. Same operations as the pages, same
identity rules: every call is made as the caller (session cookie + ``X-CSRF-Token`` for
writes, or an OIDC ID token as ``Authorization: Bearer``). Errors are JSON objects
``{"error", "message"}`` with 400 (bad input), 401, 403 (RBAC or CSRF), 404, 409.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fluxup.adapters.kube import R
from fluxup.api.managedapp import ManagedApp
from fluxup.api.rollbackrequest import RollbackRequest
from fluxup.api.upgraderequest import UpgradeRequest
from fluxup.errors import ConfigError
from fluxup.logic.inbox import build_app_row, parse_inbox_query
from fluxup.logic.paging import Page, build_page
from fluxup.ui import service
from fluxup.ui.auth import user_of
from fluxup.ui.keys import AUDIT
from fluxup.ui.openapi import build_openapi
from fluxup.ui.render import plain, to_json
from fluxup.ui.routes_pages import kube_of, load_inbox

__all__ = ["routes"]

routes = web.RouteTableDef()


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise ConfigError("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ConfigError("the request body must be a JSON object")
    return data


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_openapi())


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    user = user_of(request)
    return to_json({"user": user.name, "groups": user.groups, "name": user.display_name,
                    "via": user.via, "csrfToken": user.csrf or None})


def _paging(page: Page[Any]) -> dict[str, int]:
    return {"page": page.number, "perPage": page.per_page, "total": page.total,
            "pages": page.pages}


@routes.get("/api/apps")
async def apps(request: web.Request) -> web.Response:
    """One page of app rows (``?page=``, ``?per_page=``, ``?namespace=``, ``?state=``)."""
    query = parse_inbox_query(request.query)
    box = await load_inbox(request, query)
    rows = build_page(box.rows, query.page, query.per_page)
    return to_json({"items": rows.items, "counts": box.counts, **_paging(rows)})


@routes.get("/api/inbox")
async def inbox(request: web.Request) -> web.Response:
    """One page of updates (same parameters as ``/api/apps``), every hold, the activity."""
    query = parse_inbox_query(request.query)
    box = await load_inbox(request, query)
    updates = build_page(box.update_list, query.page, query.per_page)
    return to_json({"updates": updates.items, **_paging(updates), "held": box.held,
                    "activity": box.activity})


@routes.get("/api/apps/{ns}/{name}")
async def app(request: web.Request) -> web.Response:
    detail = await service.load_app(kube_of(request), request.match_info["ns"],
                                    request.match_info["name"])
    return to_json({"summary": build_app_row(detail.app), "object": detail.raw,
                    "upgrades": [u.to_dict() for u in detail.upgrades],
                    "rollbacks": [r.to_dict() for r in detail.rollbacks],
                    "snapshotSets": detail.snapshot_sets, "values": detail.values})


@routes.get("/api/apps/{ns}/{name}/updates")
async def updates(request: web.Request) -> web.Response:
    raw = await kube_of(request).get(R.MANAGEDAPP, request.match_info["ns"],
                                     request.match_info["name"])
    status = ManagedApp.from_dict(raw).status
    return to_json({"currentVersion": status.current_version,
                    "availableUpdate": status.available_update,
                    "candidates": status.available_updates})


@routes.post("/api/apps/{ns}/{name}/upgrade")
async def upgrade(request: web.Request) -> web.Response:
    up = await service.start_upgrade(kube_of(request), request.app[AUDIT],
                                     request.match_info["ns"], request.match_info["name"],
                                     await _body(request), user_of(request).name)
    return web.json_response(up.to_dict(), status=201)


@routes.post("/api/apps/{ns}/{name}/rollback")
async def rollback(request: web.Request) -> web.Response:
    rb = await service.start_rollback(kube_of(request), request.app[AUDIT],
                                      request.match_info["ns"], await _body(request),
                                      user_of(request).name)
    return web.json_response(rb.to_dict(), status=201)


@routes.get("/api/upgrades")
async def upgrades(request: web.Request) -> web.Response:
    items = await kube_of(request).list(R.UPGRADEREQUEST, request.query.get("namespace"))
    return to_json({"items": [UpgradeRequest.from_dict(i).to_dict() for i in items]})


@routes.get("/api/upgrades/{ns}/{name}")
@routes.get("/api/rollbacks/{ns}/{name}")
async def request_status(request: web.Request) -> web.Response:
    kind = request.path.split("/")[2]
    req = await service.load_request(kube_of(request), kind, request.match_info["ns"],
                                     request.match_info["name"])
    return to_json(req.to_dict())


@routes.get("/api/rollbacks")
async def rollbacks(request: web.Request) -> web.Response:
    items = await kube_of(request).list(R.ROLLBACKREQUEST, request.query.get("namespace"))
    return to_json({"items": [RollbackRequest.from_dict(i).to_dict() for i in items]})


@routes.get("/api/snapshots/{ns}")
async def snapshots(request: web.Request) -> web.Response:
    rows = await service.load_snapshots(kube_of(request), request.match_info["ns"])
    return to_json({"items": plain(rows)})


@routes.delete("/api/snapshots/{ns}/{name}")
async def snapshot_delete(request: web.Request) -> web.Response:
    await service.delete_snapshot(kube_of(request), request.app[AUDIT], request.match_info["ns"],
                                  request.match_info["name"], user_of(request).name)
    return web.Response(status=204)
