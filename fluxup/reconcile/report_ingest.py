"""Ingest reports pushed by a Renovate that runs elsewhere: who sent it, and what it says.

Called by the operator's report intake (:mod:`fluxup.intake`): :func:`review_sender` for
every request to the HTTPS endpoint (a ``TokenReview`` of the bearer token, then a
``SubjectAccessReview`` of the user it names, both created with the operator's own
credentials), :func:`ingest_document` for the body of an authorized request, and
:func:`ingest_configmaps` on a short schedule for the labelled ConfigMaps in the
operator's namespace. What is decided (token, RBAC rule, which content is new, what to
record) is in :mod:`fluxup.logic.report_access` and :mod:`fluxup.logic.report_intake`;
the ingest itself is :func:`fluxup.reconcile.renovate.ingest_report`, the same path
FluxUp's own scans take. A rejected report changes nothing but the ConfigMap's record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from fluxup.adapters.kube import R
from fluxup.errors import ConfigError, KubeConflict, KubeNotFound
from fluxup.logic.report_access import (
    Sender,
    build_access_review,
    build_token_review,
    determine_allowed,
    determine_sender,
)
from fluxup.logic.report_intake import (
    REPORT_LABEL,
    IngestItem,
    ReportFormat,
    build_configmap_record,
    build_ingest_items,
    determine_configmap_report,
)
from fluxup.logic.version_policy import ScanOutcome
from fluxup.reconcile.context import Context
from fluxup.reconcile.renovate import ScanSummary, ingest_report

__all__ = ["describe_summaries", "ingest_configmaps", "ingest_document", "review_sender"]

log = logging.getLogger(__name__)


async def review_sender(ctx: Context, token: str) -> Sender:
    """The user behind ``token`` if RBAC lets it send reports; raises
    :class:`~fluxup.errors.NotAuthenticatedError` / :class:`~fluxup.errors.NotAuthorizedError`
    (or a ``KubeError`` when the API server cannot be asked)."""
    audiences = ctx.settings.report_audiences
    review = await ctx.kube.create(R.TOKENREVIEW, None, build_token_review(token, audiences))
    sender = determine_sender(review, audiences)
    access = await ctx.kube.create(R.SUBJECTACCESSREVIEW, None, build_access_review(sender))
    determine_allowed(access, sender)
    return sender


async def _ingest_items(ctx: Context, items: Sequence[IngestItem],
                        source: str) -> list[ScanSummary]:
    out = []
    for item in items:
        out.append(await ingest_report(ctx, item.report,
                                       ScanOutcome(True, message=f"report from {source}"),
                                       repository_url=item.repository))
    return out


async def ingest_document(ctx: Context, body: bytes, fmt: ReportFormat,
                          repository: str | None, source: str) -> list[ScanSummary]:
    """Validate ``body`` completely (off the event loop: it may be 32 MB), then ingest
    it; a :class:`~fluxup.errors.ConfigError` means it was rejected and nothing changed."""
    items = await asyncio.to_thread(build_ingest_items, body, fmt, repository)
    return await _ingest_items(ctx, items, source)


def describe_summaries(summaries: Sequence[ScanSummary]) -> str:
    """One line: per repository, the apps, candidates and automatic upgrades."""
    parts = []
    for s in summaries:
        text = f"{s.repository}: {s.apps} app(s), {s.candidates} candidate(s)"
        if not s.ok:
            text += f", not applied ({s.message})"
        if s.auto_upgrades:
            text += f", started {', '.join(s.auto_upgrades)}"
        parts.append(text)
    return "ingested " + "; ".join(parts) if parts else "the report names no repository"


async def ingest_configmaps(ctx: Context) -> list[str]:
    """Ingest every labelled ConfigMap of the operator's namespace whose content is new;
    record the outcome on it. Returns one line per ConfigMap handled."""
    namespace = ctx.settings.namespace
    done = []
    for configmap in await ctx.kube.list(R.CONFIGMAP, namespace, {REPORT_LABEL: "true"}):
        found = determine_configmap_report(configmap)
        if found is None:
            continue
        where = f"ConfigMap {namespace}/{found.name}"
        ok = False
        if found.problem:
            result = f"rejected: {found.problem}; nothing was changed"
        else:
            try:
                summaries = await ingest_document(ctx, found.text.encode(), found.fmt,
                                                  found.repository, where)
                result, ok = describe_summaries(summaries), True
            except ConfigError as exc:
                result = f"rejected: {exc}"
        try:
            await ctx.kube.merge_patch(R.CONFIGMAP, namespace, found.name,
                                       build_configmap_record(found, result))
        except (KubeConflict, KubeNotFound):
            continue  # changed or deleted meanwhile: the next pass sees the new content
        log.info("%s: %s", where, result)
        await ctx.events.record({**configmap, "apiVersion": "v1", "kind": "ConfigMap"},
                                "ReportIngested" if ok else "ReportRejected", result,
                                warning=not ok)
        done.append(f"{where}: {result}")
    return done
