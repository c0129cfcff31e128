"""Scan the ManagedApps' Git repositories with Renovate and write what it found onto them.

Called by the operator's scan schedule (:mod:`fluxup.operator`), by ``fluxup scan`` and
by the report ingests (a Renovate that runs elsewhere). Flow of one scan:
load the ManagedApps → group them by Git repository (``status.git``) → per repository:
check out its YAML, run Renovate (:class:`~fluxup.adapters.renovate.RenovateRunner`) with
the generated config, parse the report → :func:`ingest_report`: map findings onto the
apps (:mod:`fluxup.logic.renovate_map`), apply each versionPolicy
(:mod:`fluxup.logic.version_policy`), write each app's status once (under the same
per-object lock the ManagedApp reconciler takes) and start automatic upgrades
(:mod:`fluxup.reconcile.auto_update`). A run that failed, aborted or produced an
unreadable report changes only the ``UpdatesChecked`` condition: never the updates.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fluxup.adapters.kube import Obj, R
from fluxup.adapters.renovate import RenovateRunner, checkout_yaml
from fluxup.api._codec import encode
from fluxup.api.conditions import Condition, ConditionStatus, Reason, set_condition
from fluxup.api.managedapp import GitSource, ManagedApp
from fluxup.errors import FluxUpError, InvalidObjectError, KubeConflict, KubeNotFound
from fluxup.logic.renovate_config import HostRule, ScanPaths, build_renovate_config
from fluxup.logic.renovate_map import (
    AppFindings,
    AppTarget,
    build_app_target,
    findings_for,
    map_report,
    repository_matches,
)
from fluxup.logic.renovate_report import RenovateReportError, RepositoryReport, parse_report
from fluxup.logic.version_policy import ScanOutcome, UpdateDecision, decide_updates
from fluxup.reconcile.auto_update import ensure_auto_upgrade
from fluxup.reconcile.context import Context

__all__ = ["ScanSummary", "ingest_report", "load_host_rules", "scan_all", "scan_repository"]

log = logging.getLogger(__name__)
_WRITE_ATTEMPTS = 3

#: The lock every ingest holds (see :func:`ingest_report`).
INGEST_LOCK = "renovate/ingest"


@dataclass(frozen=True)
class ScanSummary:
    """What one repository's scan did (printed by ``fluxup scan``, logged by the operator).

    ``ok`` says the run itself worked; ``unchecked`` lists the apps it could still not
    check completely (``namespace/name: why``, e.g. a registry Renovate could not reach),
    whose last known updates were kept. :attr:`complete` is both.
    """

    repository: str
    apps: int
    candidates: int
    ok: bool
    message: str
    duration_seconds: float = 0.0
    auto_upgrades: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.ok and not self.unchecked


async def _managed_apps(ctx: Context) -> list[ManagedApp]:
    apps = []
    for obj in await ctx.kube.list(R.MANAGEDAPP, None):
        try:
            app = ManagedApp.from_dict(obj)
        except InvalidObjectError as exc:
            log.error("skipping an invalid ManagedApp: %s", exc)
            continue
        if not app.spec.suspend:
            apps.append(app)
    return apps


def _decode(data: dict[str, str], key: str) -> str | None:
    value = data.get(key)
    return base64.b64decode(value).decode() if value else None


async def load_host_rules(ctx: Context) -> list[HostRule]:
    """Host rules from the settings: plain-HTTP registries, internal hosts, and registry
    credentials from the named Secrets (never logged)."""
    settings = ctx.settings
    rules = [HostRule(h, insecure=True, internal=True) for h in
             settings.renovate_insecure_registries]
    rules += [HostRule(h, internal=True) for h in settings.renovate_internal_hosts]
    for name in settings.renovate_secrets:
        try:
            secret = await ctx.kube.get(R.SECRET, settings.namespace, name)
        except KubeNotFound:
            raise FluxUpError(f"Secret {settings.namespace}/{name} named in "
                              "FLUXUP_RENOVATE_SECRETS does not exist") from None
        data = secret.get("data") or {}
        host = _decode(data, "host")
        if not host:
            raise FluxUpError(f"Secret {settings.namespace}/{name} has no 'host' key")
        rules.append(HostRule(host, host_type=_decode(data, "hostType"),
                              username=_decode(data, "username"),
                              password=_decode(data, "password"), token=_decode(data, "token")))
    return rules


def _targets(apps: Sequence[ManagedApp], url: str | None, repository: str) -> list[AppTarget]:
    out = []
    for app in apps:
        git = app.status.git
        if git is None or not (repository_matches(git.repository_url, url or repository)):
            continue
        target = build_app_target(app)
        if target is not None:
            out.append(target)
    return out


async def ingest_report(
    ctx: Context, report: RepositoryReport, outcome: ScanOutcome, *,
    repository_url: str | None = None,
) -> ScanSummary:
    """Write ``report`` onto the ManagedApps of its repository (``repository_url`` when
    FluxUp ran the scan; else matched by Renovate's repository name).

    Ingests run one at a time (scans, pushed reports, ConfigMaps), so two reports never
    decide an app's automatic upgrade at once."""
    async with ctx.lock(INGEST_LOCK):
        return await _ingest_report(ctx, report, outcome, repository_url)


async def _ingest_report(ctx: Context, report: RepositoryReport, outcome: ScanOutcome,
                         repository_url: str | None) -> ScanSummary:
    apps = await _managed_apps(ctx)
    targets = _targets(apps, repository_url, report.repository)
    if outcome.ok and report.aborted:
        outcome = ScanOutcome(False, Reason.RENOVATE_FAILED, report.abort_reason +
                              "; the last known updates are kept")
    mapped = map_report(report, targets) if outcome.ok else {}
    by_key = {(a.metadata.namespace or "", a.metadata.name): a for a in apps}
    candidates = 0
    started: list[str] = []
    unchecked: list[str] = []
    for target in targets:
        findings = findings_for(mapped, target) if outcome.ok else None
        decision = await _apply(ctx, by_key[target.key], findings, outcome)
        if decision is None:
            continue
        candidates += len(decision.candidates)
        checked = next(c for c in decision.conditions if c.type == "UpdatesChecked")
        if outcome.ok and not checked.ok:
            unchecked.append(f"{target.namespace}/{target.name}: {checked.message}")
        if decision.auto_target is not None and outcome.ok:
            name = await ensure_auto_upgrade(ctx, target.namespace, target.name,
                                             decision.auto_target)
            if name:
                started.append(f"{target.namespace}/{name}")
    return ScanSummary(repository_url or report.repository, len(targets), candidates,
                       outcome.ok, outcome.message or "scanned", auto_upgrades=tuple(started),
                       unchecked=tuple(unchecked))


async def _apply(ctx: Context, app: ManagedApp, findings: AppFindings | None,
                 outcome: ScanOutcome) -> UpdateDecision | None:
    """Decide and write one app's status, from a fresh read under the app's lock, at that
    read's resourceVersion (the operator's reconciler in another process may write the app
    meanwhile: then read and decide again)."""
    namespace, name = app.metadata.namespace or "", app.metadata.name
    async with ctx.lock(f"managedapp/{namespace}/{name}"):
        for attempt in range(_WRITE_ATTEMPTS):
            obj = await ctx.kube.find(R.MANAGEDAPP, namespace, name)
            if obj is None:
                return None
            fresh = ManagedApp.from_dict(obj)
            now = ctx.now()
            decision = decide_updates(fresh, findings, outcome, now)
            conditions = fresh.status.conditions
            for c in decision.conditions:
                conditions = set_condition(conditions, Condition(
                    c.type, ConditionStatus.TRUE if c.ok else ConditionStatus.FALSE,
                    str(c.reason), c.message, now, fresh.metadata.generation))
            status = {
                "availableUpdates": [encode(c) for c in decision.candidates],
                "availableUpdate": encode(decision.available, nulls=True)
                if decision.available else None,
                "conditions": [encode(c) for c in conditions],
            }
            written: Obj = obj
            try:
                await ctx.kube.merge_patch(R.MANAGEDAPP, namespace, name, {
                    "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                    "status": status}, sub="status")
                break
            except KubeConflict:
                if attempt + 1 == _WRITE_ATTEMPTS:
                    raise
    old = fresh.status.available_update
    new = decision.available
    if new is not None and (old is None or (old.version, old.images) != (new.version,
                                                                          new.images)):
        await ctx.events.record(written, "NewVersionDetected", decision.conditions[-1].message)
    return decision


async def scan_repository(
    ctx: Context, runner: RenovateRunner, source: GitSource, namespace: str
) -> ScanSummary:
    """Check out ``source``, run Renovate on it and ingest its report."""
    git = await ctx.open_git(source, namespace)
    host_rules = await load_host_rules(ctx)
    async with runner.workspace() as run_dir:
        run_dir = Path(run_dir)
        repo = run_dir / "repo"
        repo.mkdir()
        head = await checkout_yaml(git, repo)
        paths = ScanPaths(str(run_dir / "base"), str(run_dir / "cache"),
                          str(run_dir / "report.json"))
        config = build_renovate_config(paths, host_rules, ctx.settings.renovate_disabled_hosts)
        result = await runner.run(repo, config, run_dir)
    where = f"{source.repository_url}@{head[:12]}"
    report = RepositoryReport("local", ())
    if result.ok and result.report is not None:
        try:
            (report,) = [r for r in parse_report(result.report) if r.repository == "local"]
            outcome = ScanOutcome(True, message=f"Renovate scanned {where} in "
                                  f"{result.duration_seconds:.1f} s")
        except (RenovateReportError, ValueError) as exc:
            outcome = ScanOutcome(False, Reason.REPORT_INVALID, f"{exc}"[:500])
    else:
        outcome = ScanOutcome(False, Reason.RENOVATE_FAILED,
                              f"scan of {where} failed: {result.describe_failure()}; "
                              "the last known updates are kept")
        log.warning("%s", outcome.message)
    if ctx.metrics is not None:
        ctx.metrics.observe_scan("success" if outcome.ok else "failure", result.duration_seconds)
    summary = await ingest_report(ctx, report, outcome, repository_url=source.repository_url)
    return ScanSummary(summary.repository, summary.apps, summary.candidates, summary.ok,
                       outcome.message, result.duration_seconds, summary.auto_upgrades,
                       summary.unchecked)


async def scan_all(ctx: Context, runner: RenovateRunner) -> list[ScanSummary]:
    """Scan every repository that a (not suspended) ManagedApp lives in, one at a time."""
    sources: dict[tuple[str, str | None, object], tuple[GitSource, str]] = {}
    for app in await _managed_apps(ctx):
        git = app.status.git
        if git is None or not git.file:
            continue
        key = (git.repository_url, git.branch, git.git_repository_ref)
        source = GitSource(git.repository_url, git.branch,
                           git_repository_ref=git.git_repository_ref)
        sources.setdefault(key, (source, app.metadata.namespace or ""))
    out = []
    for source, namespace in sources.values():
        try:
            out.append(await scan_repository(ctx, runner, source, namespace))
        except FluxUpError as exc:
            message = f"scan of {source.repository_url} failed: {exc}"
            log.warning("%s", message)
            out.append(await ingest_report(
                ctx, RepositoryReport("local", ()),
                ScanOutcome(False, Reason.RENOVATE_FAILED,
                            message + "; the last known updates are kept"),
                repository_url=source.repository_url))
    return out
