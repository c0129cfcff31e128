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
from pathlib import Path

from aiohttp import web

from fluxup.api.admission import AdmissionRequest
from webhook.envelope import MalformedReview, encode_review, parse_review
from webhook.metrics import WebhookMetrics
from webhook.release_gates import GateStateUnavailable, ReleaseGates, open_release_gates
from webhook.reviews import GatePolicy, Reviewed, Stage, review
from webhook.reviews.base import allow, deny
from webhook.reviews.release_record import (
    admitted_release_secret,
    release_key_of,
    review_release_record,
)
from webhook.tls import ReloadingTLS

__all__ = [
    "CLOCK",
    "METRICS",
    "POLICY",
    "READY",
    "RELEASE_GATES",
    "SETTINGS",
    "TLS",
    "WebhookSettings",
    "create_app",
]

log = logging.getLogger(__name__)

#: Line 2's route: CREATE of Helm release records (Secrets) in labelled namespaces.
RELEASE_RECORD_PATH = "/validate-release-record"

#: Largest AdmissionReview accepted: object + oldObject of a max-size (1.5 MiB) object.
MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class WebhookSettings:
    """Everything the webhook process is configured with."""

    operator_username: str
    allow_cross_namespace_refs: bool = False
    cert_reload_interval: float = 2.0
    #: credentials for line 2's ManagedApp lookup; ``None``: the in-cluster ServiceAccount
    kubeconfig: Path | None = None


@dataclass
class Readiness:
    ready: bool = False


POLICY = web.AppKey("policy", GatePolicy)
METRICS = web.AppKey("metrics", WebhookMetrics)
READY = web.AppKey("ready", Readiness)
TLS = web.AppKey("tls", ReloadingTLS)
CLOCK: web.AppKey[Callable[[], dt.datetime]] = web.AppKey("clock")
SETTINGS = web.AppKey("settings", WebhookSettings)
RELEASE_GATES: web.AppKey[ReleaseGates | None] = web.AppKey("release_gates")


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


async def _decide_release_record(app: web.Application, admission: AdmissionRequest) -> Reviewed:
    secret = admitted_release_secret(admission)
    if secret is None:
        return allow(admission, "not-gated")
    gates = app.get(RELEASE_GATES)
    if gates is None:
        return review_release_record(
            admission, secret, "the webhook has no Kubernetes credentials"
        )
    try:
        found = await gates.gates_for(release_key_of(secret))
    except GateStateUnavailable as exc:
        return review_release_record(admission, secret, str(exc))
    return review_release_record(admission, secret, found)


async def _release_record_handler(request: web.Request) -> web.Response:
    """Line 2: ``/validate-release-record`` for CREATE of Helm release-record Secrets."""
    started = time.perf_counter()
    app = request.app
    try:
        admission = parse_review(await request.read())
    except MalformedReview as exc:
        app[METRICS].observe(RELEASE_RECORD_PATH, "unknown", "malformed",
                             time.perf_counter() - started)
        return web.json_response({"error": str(exc)}, status=400)
    try:
        reviewed = await _decide_release_record(app, admission)
    except Exception as exc:  # a bug; the safe answer is deny, never a 500
        log.error("release-record review raised %s (denied)", type(exc).__name__)
        reviewed = deny(admission, "error", "FluxUp's webhook could not decide on this Helm "
                        "release record (an internal error, logged); helm-controller retries")
    app[METRICS].observe(RELEASE_RECORD_PATH, reviewed.kind, reviewed.decision,
                         time.perf_counter() - started)
    _log_outcome(RELEASE_RECORD_PATH, reviewed, admission.get("namespace", ""),
                 admission.get("name", ""))
    return web.Response(body=encode_review(reviewed.response), content_type="application/json")


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


async def _release_gates(app: web.Application) -> AsyncIterator[None]:
    """Line 2's ManagedApp reader, unless a test put one on the app already."""
    if RELEASE_GATES in app:
        yield
        return
    async with open_release_gates(app[SETTINGS].kubeconfig) as gates:
        if gates is None:
            log.warning("no Kubernetes credentials: line 2 denies records of managed releases")
        app[RELEASE_GATES] = gates
        yield


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
    release_gates: ReleaseGates | None = None,
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
    if release_gates is not None:
        app[RELEASE_GATES] = release_gates
    app.router.add_post("/mutate", _admission_handler("mutate"))
    app.router.add_post(RELEASE_RECORD_PATH, _release_record_handler)
    app.router.add_post("/validate", _admission_handler("validate"))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.cleanup_ctx.append(_release_gates)
    app.cleanup_ctx.append(_lifecycle)
    return app
