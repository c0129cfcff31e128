"""The aiohttp application of the admission webhook: routes, handlers, lifecycle.

``/mutate`` and ``/validate`` parse an AdmissionReview (HTTP 400 if it is not one), call
the pure :func:`webhook.reviews.review` and encode its response; they never answer 500
(if a review raised, which is a bug, the answer is the safe one: deny). ``/healthz``,
``/readyz`` and Prometheus-text ``/metrics`` complete it. No Kubernetes API calls: the
policy comes from the objects' own annotations. State lives on the application under
typed ``AppKey``\\ s; the certificate watcher runs in ``cleanup_ctx``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from webhook.envelope import MalformedReview, encode_review, parse_review
from webhook.metrics import WebhookMetrics
from webhook.reviews import GatePolicy, Reviewed, Stage, review
from webhook.reviews.base import deny
from webhook.tls import ReloadingTLS

__all__ = [
    "CLOCK",
    "METRICS",
    "POLICY",
    "READY",
    "SETTINGS",
    "TLS",
    "WebhookSettings",
    "create_app",
]

log = logging.getLogger(__name__)

#: Largest AdmissionReview accepted: object + oldObject of a max-size (1.5 MiB) object.
MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class WebhookSettings:
    """Everything the webhook process is configured with."""

    operator_username: str
    allow_cross_namespace_refs: bool = False
    cert_reload_interval: float = 2.0


@dataclass
class Readiness:
    ready: bool = False


POLICY = web.AppKey("policy", GatePolicy)
METRICS = web.AppKey("metrics", WebhookMetrics)
READY = web.AppKey("ready", Readiness)
TLS = web.AppKey("tls", ReloadingTLS)
CLOCK: web.AppKey[Callable[[], dt.datetime]] = web.AppKey("clock")
SETTINGS = web.AppKey("settings", WebhookSettings)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _log_outcome(path: str, reviewed: Reviewed, namespace: str, name: str) -> None:
    status = reviewed.response.get("status", {})
    if reviewed.decision in ("allow", "not-gated") or not (
        status or reviewed.response.get("warnings")
    ):
        return
    log.info(
        "%s %s %s/%s: %s %s",
        path,
        reviewed.kind,
        namespace,
        name,
        reviewed.decision,
        status.get("message", "; ".join(reviewed.response.get("warnings", []))),
    )


def _admission_handler(stage: Stage) -> Callable[[web.Request], Awaitable[web.Response]]:
    path = "/" + stage

    async def handle(request: web.Request) -> web.Response:
        started = time.perf_counter()
        app = request.app
        body = await request.read()
        try:
            admission = parse_review(body)
        except MalformedReview as exc:
            app[METRICS].observe(path, "unknown", "malformed", time.perf_counter() - started)
            return web.json_response({"error": str(exc)}, status=400)
        try:
            reviewed = review(admission, stage, app[POLICY], app[CLOCK]())
        except Exception as exc:  # a bug; the safe answer is deny, never a 500
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("review raised %s (request denied):\n%s", type(exc).__name__, frames)
            reviewed = deny(
                admission,
                "error",
                "FluxUp's webhook could not decide on this request (an internal error, "
                "logged); retry, and report it if it persists",
                code=500,
            )
        app[METRICS].observe(
            path, reviewed.kind, reviewed.decision, time.perf_counter() - started
        )
        _log_outcome(path, reviewed, admission.get("namespace", ""), admission.get("name", ""))
        return web.Response(body=encode_review(reviewed.response), content_type="application/json")

    return handle


async def _healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _readyz(request: web.Request) -> web.Response:
    if request.app[READY].ready:
        return web.Response(text="ok")
    return web.Response(status=503, text="not ready")


async def _metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    tls = request.app.get(TLS)
    if tls is not None:
        metrics.cert_reloads["success"] = tls.reloads
        metrics.cert_reloads["failure"] = tls.failures
        metrics.cert_not_after = tls.serving.not_after
    return web.Response(
        body=metrics.render().encode(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Ready while running; watches the certificate files when serving TLS."""
    tls = app.get(TLS)
    watcher = None
    if tls is not None:
        interval = app[SETTINGS].cert_reload_interval
        watcher = asyncio.create_task(tls.watch(interval), name="fluxup-webhook-cert-watch")
    app[READY].ready = True
    yield
    app[READY].ready = False
    if watcher is not None:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher



async def create_app(
    settings: WebhookSettings,
    tls: ReloadingTLS | None = None,
    clock: Callable[[], dt.datetime] = _utcnow,
) -> web.Application:
    """The webhook application. Serve it with ``tls.server_context`` to get HTTPS with
    certificate reloading; tests may serve it over plain HTTP and pass a fixed ``clock``.
    """
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[POLICY] = GatePolicy(settings.operator_username, settings.allow_cross_namespace_refs)
    app[METRICS] = WebhookMetrics()
    app[READY] = Readiness()
    app[CLOCK] = clock
    if tls is not None:
        app[TLS] = tls
    app.router.add_post("/mutate", _admission_handler("mutate"))
    app.router.add_post("/validate", _admission_handler("validate"))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.cleanup_ctx.append(_lifecycle)
    return app
