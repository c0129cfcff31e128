"""The web UI's aiohttp application and how it is served.

:func:`build_app` is the app factory (tests call it directly with a sandbox
kubeconfig); :func:`run_ui` serves it; :mod:`fluxup.operator` enters both on the UI's own
thread and event loop (:mod:`fluxup.ui.thread`), in the operator's process. Errors raised
by the routes are turned into responses here, once: RBAC refusals become 403 (HTML page
or JSON), a missing object 404, bad input 400, a conflict 409 — each with a message
saying what to do, never a stack trace.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.fernet import Fernet

from fluxup.adapters.events import EventRecorder
from fluxup.adapters.impersonation import Impersonator
from fluxup.adapters.kube import Kube
from fluxup.errors import ConfigError, KubeConflict, KubeError, KubeForbidden, KubeNotFound
from fluxup.ui import routes_api, routes_auth, routes_pages, stream
from fluxup.ui.auth import auth_middleware, security_headers, user_of
from fluxup.ui.keys import (
    AUDIT,
    CLOCK,
    CODEC,
    IMPERSONATOR,
    INBOX_CACHE,
    OIDC,
    OPERATOR_KUBE,
    OPERATOR_SETTINGS,
    SETTINGS,
    STREAM_INTERVAL,
    TEMPLATES,
)
from fluxup.ui.listcache import ListCache
from fluxup.ui.oidc import OIDCClient
from fluxup.ui.render import build_templates, page
from fluxup.ui.session import SessionCodec
from fluxup.ui.settings import AuthMode, UiSettings

__all__ = ["build_app", "run_ui"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _status_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, KubeForbidden):
        return 403, "forbidden"
    if isinstance(exc, KubeNotFound):
        return 404, "not_found"
    if isinstance(exc, KubeConflict):
        return 409, "conflict"
    if isinstance(exc, ConfigError):
        return 400, "invalid"
    return 502, "kubernetes"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (KubeError, ConfigError) as exc:
        status, code = _status_of(exc)
        message = str(exc)
        if status == 403:
            message += ("; Kubernetes RBAC decides what you may do: ask an administrator "
                        "for the fluxup-approver role in this namespace")
        if status == 502:
            log.warning("UI request %s %s failed: %s", request.method, request.path, exc)
        if request.path.startswith("/api/"):
            return web.json_response({"error": code, "message": message}, status=status)
        return page(request, "error.html", status=status, status_code=status, message=message)


_READS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def forget_after_writes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """After a person's POST/DELETE (done or refused), their cached inbox is dropped, so
    the page they return to is read afresh and shows what they just did."""
    if request.method in _READS or request.path.startswith(("/auth/", "/static/", "/healthz")):
        return await handler(request)
    try:
        return await handler(request)
    finally:
        request.app[INBOX_CACHE].forget(user_of(request).name)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_app(settings: UiSettings, impersonator: Impersonator, audit: EventRecorder,
              operator_settings: Mapping[str, Any] | None = None,
              clock: Callable[[], dt.datetime] | None = None,
              stream_interval: float = 1.0, operator: Kube | None = None) -> web.Application:
    """The UI app. ``settings.check()`` must pass (no-auth only on loopback)."""
    settings.check()
    app = web.Application(middlewares=[security_headers, auth_middleware, error_middleware,
                                       forget_after_writes],
                          client_max_size=256 * 1024)
    app[SETTINGS] = settings
    keys = settings.session_keys or (Fernet.generate_key(),)  # demo: per-process key
    app[CODEC] = SessionCodec(keys, settings.session_ttl_seconds)
    if settings.auth is AuthMode.OIDC:
        app[OIDC] = OIDCClient(settings)
    app[IMPERSONATOR] = impersonator
    app[AUDIT] = audit
    app[TEMPLATES] = build_templates()
    app[INBOX_CACHE] = ListCache(settings.list_cache_seconds)
    app[CLOCK] = clock or (lambda: dt.datetime.now(dt.UTC))
    app[STREAM_INTERVAL] = stream_interval
    app[OPERATOR_SETTINGS] = dict(operator_settings or {})
    if operator is not None:
        app[OPERATOR_KUBE] = operator
    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static/", STATIC, name="static")
    for table in (routes_auth.routes, routes_api.routes, stream.routes, routes_pages.routes):
        app.router.add_routes(table)
    return app


@contextlib.asynccontextmanager
async def run_ui(app: web.Application, host: str, port: int) -> AsyncIterator[web.AppRunner]:
    """Serve ``app`` on ``host:port`` until the block ends."""
    if app[SETTINGS].auth is AuthMode.NONE:
        from fluxup.ui.settings import check_loopback

        check_loopback(host)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("FluxUp UI listening on http://%s:%d (auth: %s)", host, port,
             app[SETTINGS].auth.value)
    try:
        yield runner
    finally:
        await runner.cleanup()


def new_session_key() -> str:
    """A fresh Fernet key, for ``FLUXUP_UI_SESSION_KEYS`` (printed by ``fluxup ui-key``)."""
    return Fernet.generate_key().decode()
