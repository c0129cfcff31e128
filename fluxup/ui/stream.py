"""Live progress over Server-Sent Events: one stream per UpgradeRequest/RollbackRequest.

``GET /stream/{kind}/{ns}/{name}`` sends rendered progress HTML (htmx's SSE extension
swaps it in), ``GET /api/stream/{kind}/{ns}/{name}`` sends the status as JSON. Both read
the object as the logged-in user, send an event whenever its ``resourceVersion``
changes, a comment as heartbeat, and ``event: done`` once the request has finished,
then close. A stream never outlives its request's end or the client.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from fluxup.logic.inbox import is_in_flight
from fluxup.ui import service
from fluxup.ui.auth import user_of
from fluxup.ui.keys import CLOCK, IMPERSONATOR, STREAM_INTERVAL, TEMPLATES
from fluxup.ui.render import plain

__all__ = ["routes"]

routes = web.RouteTableDef()

_HEARTBEAT_SECONDS = 15.0


def _event(name: str, data: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {name}\n{lines}\n".encode()


async def _stream(request: web.Request, as_json: bool) -> web.StreamResponse:
    kind, ns, name = (request.match_info[k] for k in ("kind", "ns", "name"))
    user = user_of(request)
    kube = request.app[IMPERSONATOR].as_user(user.name, user.groups)
    first = await service.load_request(kube, kind, ns, name)  # 403/404 before streaming
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    env = request.app[TEMPLATES]
    interval = request.app[STREAM_INTERVAL]
    seen = None
    last_sent = time.monotonic()
    req = first
    while True:
        version = req.metadata.resource_version
        if version != seen:
            seen = version
            if as_json:
                data = json.dumps(plain({"kind": req.kind, "metadata": {
                    "name": req.metadata.name, "namespace": req.metadata.namespace},
                    "status": req.status}))
            else:
                now = request.app[CLOCK]()
                data = env.get_template("_progress.html").render(req=req, kind=kind, now=now)
            await response.write(_event("progress", data))
            last_sent = time.monotonic()
        if not is_in_flight(req):
            await response.write(_event("done", req.status.phase or ""))
            break
        if time.monotonic() - last_sent > _HEARTBEAT_SECONDS:
            await response.write(b": heartbeat\n\n")
            last_sent = time.monotonic()
        await asyncio.sleep(interval)
        req = await service.load_request(kube, kind, ns, name)
    return response


@routes.get("/stream/{kind:upgrades|rollbacks}/{ns}/{name}")
async def html_stream(request: web.Request) -> web.StreamResponse:
    return await _stream(request, as_json=False)


@routes.get("/api/stream/{kind:upgrades|rollbacks}/{ns}/{name}")
async def json_stream(request: web.Request) -> web.StreamResponse:
    return await _stream(request, as_json=True)
