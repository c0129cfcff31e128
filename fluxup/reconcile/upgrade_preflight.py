"""The Preflight phase of an UpgradeRequest: checks, the resolved target, the Git diff.

Called by :mod:`fluxup.reconcile.upgrade` through the phase table; the Committing action
(:mod:`fluxup.reconcile.upgrade_apply`) reuses :func:`git_changes`, so the commit is
exactly the diff Preflight showed. Reads only; changes nothing anywhere.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fluxup.adapters import chartsource
from fluxup.adapters.kube import Obj, R, Resource
from fluxup.api import annotations as ann
from fluxup.api.conditions import Reason
from fluxup.api.managedapp import ChartSourceKind, ManagedApp
from fluxup.api.meta import Identity, ImageTag
from fluxup.api.upgraderequest import (
    Origin,
    PreflightCheck,
    PreflightResult,
)
from fluxup.errors import ChartSourceError, FluxUpError, YamlEditError
from fluxup.logic import yamledit
from fluxup.logic.api_served import api_versions_of, find_unserved
from fluxup.logic.flux_health import FluxObjectHealth, judge_flux_object, summarize_flux_health
from fluxup.logic.identity import is_exact_version, normalize_chart_version
from fluxup.logic.targets import to_gate
from fluxup.reconcile.context import Context
from fluxup.reconcile.release_gate import RELEASE_HELD
from fluxup.reconcile.upgrade_pass import (
    Outcome,
    Pass,
    held_identity,
    helm_release,
    kustomization_ref,
    oci_repository,
)

__all__ = ["build_git_changes", "git_changes", "preflight"]

# --- Preflight ----------------------------------------------------------------------


def _check(name: str, ok: bool, message: str, warn_only: bool = False) -> PreflightCheck:
    if ok:
        return PreflightCheck(name, PreflightResult.PASSED, message)
    return PreflightCheck(
        name, PreflightResult.WARNING if warn_only else PreflightResult.FAILED, message
    )


def _ready(obj: Obj | None) -> tuple[bool, str]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True", str(cond.get("message", ""))
    return False, "no Ready condition yet"


def _resolve_target(p: Pass, hr: Obj, oci: Obj | None) -> Identity | None:
    spec = p.ur.spec
    if spec.origin is Origin.GIT and spec.target_version is None and not spec.target_images:
        held_hr, held_oci = held_identity(hr), held_identity(oci)
        chart = (
            (held_oci.chart if held_oci else None)
            if p.via_chart_ref
            else (held_hr.chart if held_hr else None)
        )
        held_images = held_hr.images if held_hr else ()
        if chart is None and not held_images:
            return None
        return Identity(
            version=chart,
            images=tuple(
                ImageTag(values_path=path, tag=tag) for path, tag in held_images if tag is not None
            ),
        )
    version = spec.target_version
    images = spec.target_images
    if version is None and not images and p.app.status.available_update is not None:
        version = p.app.status.available_update.version
        images = p.app.status.available_update.images
    if version is None and not images:
        return None
    return Identity(version=normalize_chart_version(version) if version else None, images=images)


async def _source_access(p: Pass, source: Obj, url: str) -> chartsource.SourceAccess:
    """Credentials and TLS of a Flux source, from its own namespace's Secrets."""
    spec, namespace = source.get("spec") or {}, source["metadata"]["namespace"]
    secrets: list[Obj | None] = []
    for ref in ("secretRef", "certSecretRef"):
        name = (spec.get(ref) or {}).get("name")
        secret = await p.ctx.kube.find(R.SECRET, namespace, str(name)) if name else None
        if name and secret is None:
            raise ChartSourceError(f"{ref} Secret {namespace}/{name} not found")
        secrets.append(secret)
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return chartsource.build_source_access(
        host, secrets[0], secrets[1], bool(spec.get("insecure")),
        where=f"of {source.get('kind')} {namespace}/{source['metadata']['name']}",
    )


async def _target_exists(p: Pass, hr: Obj, oci: Obj | None, version: str) -> PreflightCheck:
    name = "target-version-exists"
    try:
        if p.via_chart_ref and oci is not None:
            url = str((oci.get("spec") or {}).get("url"))
            tags = await chartsource.list_oci_tags(url, await _source_access(p, oci, url))
            return _check(
                name,
                version in tags,
                f"tag {version} {'found' if version in tags else 'not found'} in "
                f"{url} (tags: {', '.join(sorted(tags)[-8:])})",
            )
        chart_spec = ((hr.get("spec") or {}).get("chart") or {}).get("spec") or {}
        source = chart_spec.get("sourceRef") or {}
        if source.get("kind", "HelmRepository") != "HelmRepository":
            return _check(
                name,
                False,
                f"cannot list versions of a {source.get('kind')} source",
                warn_only=True,
            )
        repo = await p.ctx.kube.find(
            R.HELMREPOSITORY,
            source.get("namespace") or hr["metadata"]["namespace"],
            str(source.get("name")),
        )
        if repo is None:
            return _check(name, False, f"could not check: HelmRepository "
                          f"{source.get('name')} not found", warn_only=True)
        url = str((repo.get("spec") or {}).get("url"))
        access = await _source_access(p, repo, url)
        chart = str(chart_spec.get("chart"))
        if url.startswith("oci://"):
            tags = await chartsource.list_oci_tags(f"{url.rstrip('/')}/{chart}", access)
        else:
            tags = await chartsource.list_helm_repository_versions(url, chart, access)
        found = version in tags
        return _check(
            name,
            found,
            f"chart {chart} {version} {'found' if found else 'not found'} in {url}",
        )
    except ChartSourceError as exc:
        # an unreadable source is not proof the version is missing: warn, never hold forever
        return _check(name, False, f"could not check: {exc}", warn_only=True)


def _render_edit(
    via_chart_ref: bool, text: str, path: str, target: Identity, hr_name: str, hr_namespace: str
) -> str:
    new = text
    if target.version and not via_chart_ref:
        new = yamledit.edit_chart_version(
            new, name=hr_name, version=target.version, namespace=hr_namespace, path=path
        )
    for image in target.images:
        new = yamledit.edit_values_image_tag(
            new,
            name=hr_name,
            values_path=image.values_path,
            tag=image.tag,
            namespace=hr_namespace,
            path=path,
        )
    return new


async def git_changes(p: Pass, target: Identity) -> dict[str, tuple[str, str]]:
    """``{path: (old text, new text)}`` of the commit that applies ``target``."""
    return await build_git_changes(p.ctx, p.app, target)


async def build_git_changes(
    ctx: Context, app: ManagedApp, target: Identity
) -> dict[str, tuple[str, str]]:
    """``{path: (old text, new text)}`` of a commit setting ``app`` to ``target`` (also
    used by a rollback to commit the previous version forward)."""
    git_source = app.status.git
    if git_source is None or not git_source.file:
        raise FluxUpError(
            f"ManagedApp {app.metadata.name} has no Git file yet "
            "(status.git.file); check its Discovered condition"
        )
    git = await ctx.open_git(git_source, app.metadata.namespace or "")
    ref = app.spec.helm_release_ref
    hr_namespace, hr_name = ref.namespace_or(app.metadata.namespace or ""), ref.name
    source = app.status.chart_source
    via_chart_ref = source is not None and source.kind == "OCIRepository"
    changes: dict[str, tuple[str, str]] = {}
    current = await git.read_file(git_source.file)
    # YAML round-trips are CPU work: they run in a worker thread, never on the event loop
    new = await asyncio.to_thread(
        _render_edit, via_chart_ref, current.text, git_source.file, target, hr_name,
        hr_namespace,
    )
    if new != current.text:
        changes[git_source.file] = (current.text, new)
    if via_chart_ref and target.version and source is not None:
        for path in await git.list_files(git_source.path or ""):
            if not path.endswith((".yaml", ".yml")):
                continue
            text = changes[path][1] if path in changes else (await git.read_file(path)).text
            found = await asyncio.to_thread(
                yamledit.find_documents, text, "OCIRepository", source.name, path=path
            )
            if not found:
                continue
            new = await asyncio.to_thread(
                yamledit.edit_oci_tag, text, name=source.name, tag=target.version, path=path
            )
            old = changes[path][0] if path in changes else text
            if new != old:
                changes[path] = (old, new)
            break
        else:
            raise FluxUpError(
                f"OCIRepository {source.name} is not defined under "
                f"{git_source.path or '/'} in {git_source.repository_url}"
            )
    return changes


async def _api_versions_served(
    ctx: Context, changes: dict[str, tuple[str, str]]
) -> PreflightCheck:
    """Every object in the files the commit changes has an apiVersion and kind the cluster
    serves (discovery), so Flux can still apply them after the commit."""
    try:
        documents = {
            path: await asyncio.to_thread(yamledit.list_documents, new, path)
            for path, (_, new) in changes.items()
        }
    except YamlEditError as exc:
        return _check("api-versions-served", False, str(exc))
    served = {
        version: await ctx.kube.served_kinds(version)
        for version in api_versions_of(d for docs in documents.values() for d in docs)
    }
    problems = find_unserved(documents, served)
    if problems:
        return _check("api-versions-served", False,
                      "; ".join(problems) + "; move the file to an apiVersion the cluster "
                      "serves before upgrading (nothing was committed)")
    count = sum(len(docs) for docs in documents.values())
    return _check("api-versions-served", True,
                  f"the cluster serves all {count} object(s) in the changed file(s)")


async def _judge(p: Pass, kind: str, res: Resource, namespace: str, name: str
                 ) -> FluxObjectHealth:
    return judge_flux_object(f"{kind} {namespace}/{name}",
                             await p.ctx.kube.find(res, namespace, name))


async def _flux_healthy(p: Pass, hr: Obj) -> PreflightCheck:
    """The Flux objects the upgrade passes through can carry it: the Kustomization that
    applies the HelmRelease, its GitRepository, and the chart source. For a request that
    commits to Git an unfit one fails preflight (nothing is committed); for a change that
    already came from Git it only warns (Flux has applied it; the gate holds it)."""
    judged: list[FluxObjectHealth] = []
    ks_ref = kustomization_ref(p, hr)
    if ks_ref is not None:
        ks_ns, ks_name = ks_ref
        ks = await p.ctx.kube.find(R.KUSTOMIZATION, ks_ns, ks_name)
        judged.append(judge_flux_object(f"Kustomization {ks_ns}/{ks_name}", ks))
        source = ((ks or {}).get("spec") or {}).get("sourceRef") or {}
        if source.get("kind") == "GitRepository" and source.get("name"):
            judged.append(await _judge(p, "GitRepository", R.GITREPOSITORY,
                                       str(source.get("namespace") or ks_ns),
                                       str(source["name"])))
    chart = p.app.status.chart_source
    sources = {ChartSourceKind.HELM_REPOSITORY: R.HELMREPOSITORY,
               ChartSourceKind.OCI_REPOSITORY: R.OCIREPOSITORY}
    if chart is not None and chart.kind in sources:
        judged.append(await _judge(p, chart.kind.value, sources[chart.kind], chart.namespace,
                                   chart.name))
    ok, message = summarize_flux_health(tuple(judged))
    return _check("flux-healthy", ok, message, warn_only=p.ur.spec.origin is Origin.GIT)


def _target_differs(
    p: Pass, same: bool, previous: Identity, target: Identity
) -> PreflightCheck:
    """A request for what already runs fails, unless the gate holds something for it:
    the gate saw a difference the version fields do not show (a chart source, an image
    repository, Helm's merged values), and snapshots then a release resolve the hold."""
    if not same:
        return _check("target-differs", True,
                      f"{to_gate(previous).describe()} -> {to_gate(target).describe()}")
    if p.ur.metadata.annotations.get(RELEASE_HELD):
        return _check("target-differs", True, "Helm's release record asks for a new identity")
    if p.ur.spec.origin is Origin.GIT:
        return _check("target-differs", True,
                      "the admission gate holds a change of the HelmRelease beyond its "
                      "version fields")
    return _check("target-differs", False,
                  f"{p.app.metadata.name} already runs {to_gate(target).describe()}")


async def preflight(p: Pass) -> Outcome:
    """Check everything an upgrade needs; resolve the target; compute the exact Git diff."""
    hr = await helm_release(p)
    hr_namespace, hr_name = p.hr_ref
    if hr is None:
        return Outcome.failed(
            Reason.PREFLIGHT_FAILED, f"HelmRelease {hr_namespace}/{hr_name} not found"
        )
    oci = await oci_repository(p)
    checks = [_check("helmrelease-found", True, f"HelmRelease {hr_namespace}/{hr_name}")]
    labelled = ann.MANAGED_APP_LABEL in ((hr.get("metadata") or {}).get("labels") or {})
    checks.append(
        _check(
            "gated",
            labelled,
            "the admission gate sees the HelmRelease"
            if labelled
            else "the HelmRelease is not labelled for the gate yet",
        )
    )
    target = _resolve_target(p, hr, oci)
    previous = Identity(version=p.app.status.current_version, images=p.app.status.current_images)
    if target is None:
        return Outcome.failed(
            Reason.PREFLIGHT_FAILED,
            "no target version: set spec.targetVersion, or wait until the "
            "ManagedApp reports an available update",
            preflight=tuple(checks),
        )
    if target.version and not is_exact_version(target.version):
        return Outcome.failed(
            Reason.PREFLIGHT_FAILED, f"target {target.version!r} is a range; name one exact version"
        )
    if target.version:
        checks.append(await _target_exists(p, hr, oci, target.version))
    same = to_gate(previous).satisfies(to_gate(target)) and to_gate(target).satisfies(
        to_gate(previous)
    )
    checks.append(_target_differs(p, same, previous, target))
    ready, why = _ready(hr)
    checks.append(_check("app-healthy", ready, why or "HelmRelease Ready", warn_only=True))
    checks.append(await _flux_healthy(p, hr))
    snapshots_on = p.app.spec.volume_snapshots.enabled and not p.ur.spec.skip_snapshot
    if snapshots_on:
        pvcs = p.app.status.pvcs
        checks.append(
            _check(
                "pvcs",
                bool(pvcs),
                f"{len(pvcs)} PVC(s) to snapshot: {', '.join(x.name for x in pvcs)}"
                if pvcs
                else "no PVCs found; list spec.volumeSnapshots.pvcs or set "
                "volumeSnapshots.enabled=false",
            )
        )
        for pvc in pvcs:
            obj = await p.ctx.kube.find(R.PVC, pvc.namespace, pvc.name)
            phase = ((obj or {}).get("status") or {}).get("phase")
            checks.append(
                _check(
                    f"pvc/{pvc.name}",
                    phase == "Bound",
                    f"PVC {pvc.namespace}/{pvc.name} is {phase or 'missing'}",
                )
            )
        klass = p.app.status.volume_snapshot_class_name
        exists = (
            bool(klass) and await p.ctx.kube.find(R.SNAPSHOTCLASS, None, klass or "") is not None
        )
        checks.append(
            _check(
                "snapshot-class",
                exists,
                f"VolumeSnapshotClass {klass}" if exists else "no usable VolumeSnapshotClass",
            )
        )
    diff = None
    if p.ur.spec.origin is not Origin.GIT:
        try:
            changes = await git_changes(p, target)
        except (YamlEditError, FluxUpError) as exc:
            checks.append(_check("git-edit", False, str(exc)))
            changes = {}
        else:
            checks.append(
                _check(
                    "git-edit",
                    True,  # already in Git (e.g. an earlier attempt's commit): nothing to commit
                    f"{len(changes)} file(s) change"
                    if changes
                    else "Git already has the target version; nothing to commit",
                )
            )
            if changes:
                checks.append(await _api_versions_served(p.ctx, changes))
        diff = (
            "".join(
                yamledit.diff_text(path, old, new) for path, (old, new) in sorted(changes.items())
            )
            or None
        )
    updates: dict[str, Any] = {
        "preflight": tuple(checks),
        "target_identity": target,
        "previous_identity": previous,
        "git_diff": diff,
    }
    failed = [c for c in checks if c.result is PreflightResult.FAILED]
    if failed:
        return Outcome.failed(
            Reason.PREFLIGHT_FAILED,
            "preflight failed: " + "; ".join(c.message or c.name for c in failed),
            **updates,
        )
    if p.ur.spec.dry_run:
        return Outcome.finished(
            f"dry run: preflight passed; upgrading would change "
            f"{to_gate(previous).describe()} -> "
            f"{to_gate(target).describe()}",
            **updates,
        )
    return Outcome.finished(**updates)
