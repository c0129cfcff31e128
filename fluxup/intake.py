"""The operator's report intake: an HTTPS endpoint and a ConfigMap poll for Renovate reports.

Started by :mod:`fluxup.operator` (in its process and loop) when configured:

* ``POST /v1/renovate/report`` on ``FLUXUP_REPORT_ADDRESS``, TLS only (certificate and
  key files, reloaded when they change, as the webhook's). A request is authenticated
  before its body is read: a ServiceAccount bearer token, checked with a TokenReview
  (401 when missing or not accepted), authorized with a SubjectAccessReview of
  ``create managedapps/report`` in ``fluxup.dev`` (403). The body is a ``report.json``
  (or a JSON log with ``?format=log``), at most 32 MB (413); ``?repository=`` names the
  Git repository when the report does not. A report that is not Renovate's is refused
  with 400 and the JSON path of the problem; nothing is changed. The API server being
  unreachable is 503. ``GET /healthz`` answers ``ok``.
* :func:`configmap_loop`: the labelled ConfigMaps of the operator's namespace
  (:mod:`fluxup.logic.report_intake`), every ``FLUXUP_REPORT_CONFIGMAP_INTERVAL_SECONDS``.

The transport is here; what is checked and ingested is behind the :class:`Intake`
protocol (:class:`OperatorIntake` in the operator; tests may give their own). Tokens and
report contents are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from aiohttp import web

from fluxup.errors import (
    ConfigError,
    FluxUpError,
    KubeError,
    NotAuthenticatedError,
    NotAuthorizedError,
)
from fluxup.logic.renovate_report import MAX_REPORT_BYTES
from fluxup.logic.report_access import Sender, bearer_token
from fluxup.logic.report_intake import ReportFormat, check_repository
from fluxup.reconcile.context import Context
from fluxup.reconcile.renovate import ScanSummary
from fluxup.reconcile.report_ingest import ingest_configmaps, ingest_document, review_sender
from webhook.tls import ReloadingTLS

__all__ = ["INTAKE", "REPORT_PATH", "Intake", "OperatorIntake", "build_intake_app",
           "configmap_loop", "serve_intake"]

log = logging.getLogger(__name__)

#: Where reports are posted.
REPORT_PATH = "/v1/renovate/report"


class Intake(Protocol):
    """Who may send a report, and what happens to an accepted one."""

    async def authorize(self, token: str) -> Sender: ...

    async def ingest(self, body: bytes, fmt: ReportFormat, repository: str | None,
                     sender: Sender) -> Sequence[ScanSummary]: ...


class OperatorIntake:
    """The operator's :class:`Intake`: TokenReview + SubjectAccessReview, then the ingest
    FluxUp's own scans use."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def authorize(self, token: str) -> Sender:
        return await review_sender(self._ctx, token)

    async def ingest(self, body: bytes, fmt: ReportFormat, repository: str | None,
                     sender: Sender) -> Sequence[ScanSummary]:
        return await ingest_document(self._ctx, body, fmt, repository, sender.username)


INTAKE = web.AppKey("intake", Intake)
MAX_BYTES = web.AppKey("max_bytes", int)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="fluxup"'} if status == 401 else None
    return web.json_response({"error": message, **extra}, status=status, headers=headers)


def _summary(s: ScanSummary) -> dict[str, Any]:
    return {"repository": s.repository, "apps": s.apps, "candidates": s.candidates,
            "ok": s.ok, "message": s.message, "autoUpgrades": list(s.auto_upgrades)}


async def _post_report(request: web.Request) -> web.Response:
    intake, limit = request.app[INTAKE], request.app[MAX_BYTES]
    try:
        sender = await intake.authorize(bearer_token(request.headers.get("Authorization")))
    except NotAuthenticatedError as exc:
        return _error(401, str(exc))
    except NotAuthorizedError as exc:
        return _error(403, str(exc))
    except KubeError as exc:
        return _error(503, f"the token could not be reviewed: {exc}; try again")
    try:
        fmt = ReportFormat(request.query.get("format", ReportFormat.REPORT.value))
    except ValueError:
        return _error(400, "format must be 'report' (report.json) or 'log' (a JSON log)")
    try:
        repository = check_repository(request.query.get("repository"), "repository")
    except ConfigError as exc:
        return _error(400, str(exc))
    too_large = f"the report is larger than {limit} bytes; nothing was changed"
    if request.content_length is not None and request.content_length > limit:
        return _error(413, too_large)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, too_large)
    try:
        summaries = await intake.ingest(body, fmt, repository, sender)
    except ConfigError as exc:
        log.warning("report from %s rejected: %s", sender.username, exc)
        return _error(400, str(exc), path=getattr(exc, "path", None))
    except KubeError as exc:
        return _error(503, f"the report could not be applied: {exc}; send it again")
    log.info("report from %s: %s", sender.username,
             "; ".join(f"{s.repository} {s.apps} app(s) {s.candidates} candidate(s)"
                       for s in summaries) or "no repository")
    return web.json_response({"repositories": [_summary(s) for s in summaries]})


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def build_intake_app(intake: Intake, max_bytes: int = MAX_REPORT_BYTES) -> web.Application:
    """The endpoint's aiohttp application (bodies over ``max_bytes`` are refused)."""
    app = web.Application(client_max_size=max_bytes)
    app[INTAKE] = intake
    app[MAX_BYTES] = max_bytes
    app.router.add_post(REPORT_PATH, _post_report)
    app.router.add_get("/healthz", _healthz)
    return app


@contextlib.asynccontextmanager
async def serve_intake(app: web.Application, host: str, port: int, tls: ReloadingTLS,
                       reload_interval: float = 10.0) -> AsyncIterator[int]:
    """Serve ``app`` over HTTPS on ``host:port`` while open; yields the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls.server_context)
    await site.start()
    bound = port
    for sock in getattr(site._server, "sockets", None) or ():
        bound = sock.getsockname()[1]
        break
    watcher = asyncio.create_task(tls.watch(reload_interval))
    log.info("Renovate reports accepted on https://%s:%d%s", host, bound, REPORT_PATH)
    try:
        yield bound
    finally:
        watcher.cancel()
        await runner.cleanup()


async def configmap_loop(ctx: Context, interval: float) -> None:
    """Ingest new labelled ConfigMaps every ``interval`` seconds until cancelled."""
    while True:
        try:
            await ingest_configmaps(ctx)
        except FluxUpError as exc:
            log.warning("reading report ConfigMaps failed: %s; retrying in %.0f s",
                        exc, interval)
        await asyncio.sleep(interval)
