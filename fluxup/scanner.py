"""Renovate scans as a process concern: on demand (``fluxup scan``) and on the schedule.

:func:`scan_once` is called by the CLI: it builds the same
:class:`~fluxup.reconcile.context.Context` the operator uses (kubeconfig or in-cluster,
Flux's Git credentials), scans every repository a ManagedApp lives in, or ingests a report
file from a Renovate that ran elsewhere. :func:`scan_loop` is started by the operator
(:mod:`fluxup.operator`) when ``FLUXUP_RENOVATE_INTERVAL_SECONDS`` is set; a failing scan
is logged and retried at the next interval, never crashing the operator.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from kubernetes_asyncio import client, config

from fluxup.adapters.events import EventRecorder
from fluxup.adapters.gitopen import GitOpenerCache
from fluxup.adapters.kube import KubeApi, new_api_client
from fluxup.adapters.renovate import RenovateRunner
from fluxup.errors import FluxUpError
from fluxup.logic.renovate_report import parse_log, parse_report
from fluxup.logic.version_policy import ScanOutcome
from fluxup.reconcile.context import Context
from fluxup.reconcile.renovate import ScanSummary, ingest_report, scan_all
from fluxup.settings import Settings

__all__ = ["build_runner", "scan_loop", "scan_once"]

log = logging.getLogger(__name__)


def build_runner(settings: Settings) -> RenovateRunner:
    """The runner for the configured Node and Renovate (``FLUXUP_RENOVATE_NODE``/``_JS``)."""
    return RenovateRunner(settings.renovate_node, settings.renovate_js,
                          work_dir=Path(settings.work_dir) / "renovate",
                          timeout_seconds=settings.renovate_timeout_seconds)


async def scan_loop(ctx: Context, runner: RenovateRunner, interval: float) -> None:
    """Scan every ``interval`` seconds until cancelled (the first scan right away)."""
    while True:
        try:
            for summary in await scan_all(ctx, runner):
                log.info("renovate scan of %s: %d app(s), %d candidate(s), %s",
                         summary.repository, summary.apps, summary.candidates, summary.message)
                for line in summary.unchecked:
                    log.warning("renovate scan of %s did not fully check %s",
                                summary.repository, line)
        except FluxUpError as exc:
            log.warning("renovate scan failed: %s; retrying in %.0f s", exc, interval)
        await asyncio.sleep(interval)


async def _context(settings: Settings) -> tuple[Context, client.ApiClient, GitOpenerCache]:
    configuration = client.Configuration()
    if settings.kubeconfig is not None:
        await config.load_kube_config(config_file=str(settings.kubeconfig),
                                      client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    api = new_api_client(configuration)
    kube = KubeApi(api, manager=settings.field_manager)
    opener = GitOpenerCache(kube, settings)
    return Context(kube=kube, settings=settings, open_git=opener,
                   events=EventRecorder(kube)), api, opener


async def scan_once(settings: Settings, *, report: Path | None = None,
                    repository: str | None = None, log_format: bool = False
                    ) -> list[ScanSummary]:
    """Scan now, or ingest ``report`` (a report.json, or a JSON log with ``log_format``)
    for ``repository`` (its Git URL, or Renovate's name for it)."""
    ctx, api, opener = await _context(settings)
    try:
        if report is None:
            return await scan_all(ctx, build_runner(settings))
        text = await asyncio.to_thread(report.read_text, "utf-8")
        reports = (parse_log(text, repository or "local"),) if log_format else parse_report(text)
        out = []
        for found in reports:
            url = repository if repository and "://" in repository else None
            if url is None and found.repository == "local" and repository is None:
                raise FluxUpError("the report is of a local run: give --repository URL")
            out.append(await ingest_report(ctx, found, ScanOutcome(True, message=f"{report}"),
                                           repository_url=url))
        return out
    finally:
        await opener.aclose()
        await api.close()
