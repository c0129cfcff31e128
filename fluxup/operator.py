"""The ``fluxup operator`` process: kopf, the reconcilers, their adapters and the web UI.

:func:`run` is called by the CLI. It loads the Kubernetes client (kubeconfig or
in-cluster), builds the :class:`~fluxup.reconcile.context.Context`, registers the kopf
handlers, starts the scheduled Renovate scans and the report intake (HTTPS endpoint,
ConfigMaps; :mod:`fluxup.intake`) when configured, and runs kopf until
stopped, with the web UI (:mod:`fluxup.ui`) on a thread and loop of its own
(:mod:`fluxup.ui.thread`) when ``FLUXUP_UI_ENABLED``. All state lives in Kubernetes objects, so a
restart (or SIGKILL) resumes where the last status write left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

import kopf
from kubernetes_asyncio import client, config

from fluxup.adapters.events import EventRecorder
from fluxup.adapters.gitopen import GitOpenerCache
from fluxup.adapters.impersonation import Impersonator
from fluxup.adapters.kube import Kube, KubeApi, R, new_api_client
from fluxup.adapters.metrics import OperatorMetrics, serve_metrics
from fluxup.adapters.notify import (
    AppriseChannel,
    Channel,
    FluxEventsChannel,
    Notifier,
    read_urls_file,
)
from fluxup.handlers.registry import register
from fluxup.intake import OperatorIntake, build_intake_app, configmap_loop, serve_intake
from fluxup.logic.operator_identity import (
    build_self_subject_review,
    check_operator_username,
    username_of_review,
)
from fluxup.reconcile.context import Context
from fluxup.reconcile.fleet_metrics import FleetRefresher
from fluxup.scanner import build_runner, scan_loop
from fluxup.settings import Settings
from fluxup.ui.settings import UiSettings
from fluxup.ui.thread import LoopThread
from webhook.tls import ReloadingTLS

__all__ = ["run", "serve", "verify_operator_identity"]

log = logging.getLogger(__name__)


async def _api_client(settings: Settings) -> client.ApiClient:
    if settings.kubeconfig is not None:
        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(settings.kubeconfig),
                                      client_configuration=configuration)
    else:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return new_api_client(configuration)


async def verify_operator_identity(kube: Kube, settings: Settings) -> str:
    """Ask the API server who the operator is (SelfSubjectReview); refuse to start when
    it is not the configured ``FLUXUP_OPERATOR_USERNAME`` (the user the gate trusts)."""
    review = await kube.create(R.SELFSUBJECTREVIEW, None, build_self_subject_review())
    actual = username_of_review(review)
    check_operator_username(settings.operator_username, actual)
    log.info("operator acts as %s (SelfSubjectReview), the user the gate trusts", actual)
    return actual


def build_notifier(settings: Settings, metrics: OperatorMetrics) -> Notifier | None:
    """The notifier for the configured channels, or None when there is none."""
    channels: list[Channel] = []
    if settings.notify_urls_file is not None:
        channels += [AppriseChannel(url) for url in read_urls_file(settings.notify_urls_file)]
    if settings.flux_events_url:
        channels.append(FluxEventsChannel(settings.flux_events_url))
    if not channels:
        return None
    log.info("notifications to %s", ", ".join(c.name for c in channels))
    return Notifier(channels, attempts=settings.notify_attempts,
                    backoff=settings.notify_backoff_seconds,
                    on_result=metrics.observe_notification)


@contextlib.asynccontextmanager
async def _ui_context(settings: Settings, ui_settings: UiSettings) -> AsyncIterator[None]:
    """The web UI (DESIGN §5) with a Kubernetes client of its own; writes impersonate the
    user. Entered on the UI's own thread and loop (:mod:`fluxup.ui.thread`)."""
    from fluxup.ui.app import build_app, run_ui

    api = await _api_client(settings)
    kube = KubeApi(api, manager=settings.field_manager)
    impersonator = Impersonator(api.configuration)
    shown = {f.name: str(getattr(settings, f.name)) for f in dataclasses.fields(settings)}
    app = build_app(ui_settings, impersonator, EventRecorder(kube, component="fluxup-ui"),
                    operator_settings=shown, operator=kube)
    try:
        async with run_ui(app, ui_settings.host, ui_settings.port):
            yield
    finally:
        await impersonator.aclose()
        await api.close()


async def serve(settings: Settings, stop_flag: asyncio.Event | threading.Event | None = None,
                ready_flag: asyncio.Event | threading.Event | None = None,
                ui_settings: UiSettings | None = None) -> None:
    """Run the operator (and the web UI when enabled) until ``stop_flag`` is set."""
    api = await _api_client(settings)
    kube = KubeApi(api, manager=settings.field_manager)
    try:
        await verify_operator_identity(kube, settings)
    except BaseException:
        await api.close()
        raise
    opener = GitOpenerCache(kube, settings)
    metrics = OperatorMetrics()
    notifier = build_notifier(settings, metrics)
    ctx = Context(kube=kube, settings=settings, open_git=opener, events=EventRecorder(kube),
                  metrics=metrics, notifier=notifier)
    registry = kopf.OperatorRegistry()
    register(registry, settings)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.persistence.finalizer = "fluxup.dev/kopf"

    @kopf.on.login(registry=registry)
    async def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
        if ctx.settings.kubeconfig is not None:  # kopf reads the path from $KUBECONFIG
            return kopf.login_with_kubeconfig(settings=settings)
        return kopf.login_with_service_account(settings=settings)

    async def run_kopf() -> None:
        await kopf.operator(registry=registry, memo=kopf.Memo(ctx=ctx), clusterwide=True,
                            standalone=True, stop_flag=stop_flag, ready_flag=ready_flag)

    scans = configmaps = None
    if settings.renovate_interval_seconds:  # scheduled Renovate scans (docs/renovate.md)
        scans = asyncio.create_task(scan_loop(ctx, build_runner(settings),
                                              settings.renovate_interval_seconds))
    if settings.report_configmap_interval_seconds:  # reports in ConfigMaps (docs/renovate.md)
        configmaps = asyncio.create_task(
            configmap_loop(ctx, settings.report_configmap_interval_seconds))
    address = settings.metrics_host_port()
    report_address = settings.report_host_port()
    try:
        async with contextlib.AsyncExitStack() as stack:
            if ui_settings is not None and ui_settings.enabled:
                await stack.enter_async_context(
                    LoopThread("fluxup-ui", lambda: _ui_context(settings, ui_settings)))
            if report_address is not None and settings.report_cert_file is not None \
                    and settings.report_key_file is not None:
                tls = ReloadingTLS(settings.report_cert_file, settings.report_key_file)
                await stack.enter_async_context(serve_intake(
                    build_intake_app(OperatorIntake(ctx)), *report_address, tls))
            if address is not None:
                refresh = FleetRefresher(kube, metrics)
                await stack.enter_async_context(
                    serve_metrics(metrics, *address, before_scrape=refresh))
            await run_kopf()
    finally:
        if scans is not None:
            scans.cancel()
        if configmaps is not None:
            configmaps.cancel()
        if notifier is not None:
            await notifier.aclose()
        await opener.aclose()
        await api.close()


def run(settings: Settings, ui_settings: UiSettings | None = None) -> None:
    """Blocking entry point for ``fluxup operator``."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if settings.kubeconfig is not None:
        os.environ["KUBECONFIG"] = str(settings.kubeconfig)
    asyncio.run(serve(settings, ui_settings=ui_settings))
