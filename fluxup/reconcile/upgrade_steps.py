"""The action of each UpgradeRequest phase: small, idempotent, named for what it does.

Called only by :mod:`fluxup.reconcile.upgrade`, which owns the phase table, deadlines
and the one status write per pass. Each action observes first and acts only when its
effect is missing (deterministic snapshot names, "is the commit already there?",
replicas recorded in status before scaling), so re-running it after a crash is safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from fluxup.adapters import chartsource, flux
from fluxup.adapters.kube import Obj, R, Resource
from fluxup.api import annotations as ann
from fluxup.api._codec import encode
from fluxup.api.conditions import Reason
from fluxup.api.managedapp import LastUpgrade, ManagedApp, RequestKind
from fluxup.api.meta import Identity, ImageTag, WorkloadKind, WorkloadReplicas
from fluxup.api.upgraderequest import (
    TERMINAL_UPGRADE_PHASES,
    Origin,
    PreflightCheck,
    PreflightResult,
    SnapshotStatus,
    UpgradePhase,
    UpgradeRequest,
    UpgradeRequestStatus,
)
from fluxup.errors import ChartSourceError, FluxUpError, KubeConflict, YamlEditError
from fluxup.logic import commitmsg, snapshots, yamledit
from fluxup.logic.identity import Identity as GateIdentity
from fluxup.logic.identity import is_exact_version, normalize_chart_version, parse_identity
from fluxup.logic.targets import to_gate
from fluxup.reconcile.context import Context

__all__ = ["Outcome", "Pass", "finish", "load_app", "undo"]

UPGRADE_FAILURE_REASONS = frozenset({
    "UpgradeFailed", "InstallFailed", "RetriesExceeded", "RollbackSucceeded",
    "UninstallSucceeded", "TestFailed", "ArtifactFailed", "InitFailed",
})


@dataclass(frozen=True)
class Outcome:
    """What one action decided: finished, jump, wait, or fail; plus status updates."""

    done: bool = False
    goto: Any = None
    failure: tuple[str, str] | None = None
    message: str | None = None
    updates: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def waiting(cls, message: str, **updates: Any) -> Outcome:
        return cls(message=message, updates=updates)

    @classmethod
    def finished(cls, message: str | None = None, **updates: Any) -> Outcome:
        return cls(done=True, message=message, updates=updates)

    @classmethod
    def failed(cls, reason: str, message: str, **updates: Any) -> Outcome:
        return cls(failure=(str(reason), message), updates=updates)


@dataclass(frozen=True)
class Pass:
    """Everything one pass knows about the request it drives."""

    ctx: Context
    obj: Obj
    ur: UpgradeRequest
    app: ManagedApp
    status: UpgradeRequestStatus

    @property
    def namespace(self) -> str:
        return self.ur.metadata.namespace or ""

    @property
    def request_id(self) -> str:
        return f"{self.namespace}/{self.ur.metadata.name}"

    @property
    def hr_ref(self) -> tuple[str, str]:
        ref = self.app.spec.helm_release_ref
        return ref.namespace_or(self.app.metadata.namespace or ""), ref.name

    @property
    def via_chart_ref(self) -> bool:
        source = self.app.status.chart_source
        return source is not None and source.kind == "OCIRepository"

    def target(self) -> Identity:
        return self.status.target_identity or Identity()


async def load_app(ctx: Context, ur: UpgradeRequest) -> ManagedApp | None:
    obj = await ctx.kube.find(R.MANAGEDAPP, ur.metadata.namespace, ur.spec.managed_app_ref.name)
    return ManagedApp.from_dict(obj) if obj else None


async def _helm_release(p: Pass) -> Obj | None:
    namespace, name = p.hr_ref
    return await p.ctx.kube.find(R.HELMRELEASE, namespace, name)


async def _oci_repository(p: Pass) -> Obj | None:
    source = p.app.status.chart_source
    if source is None or source.kind != "OCIRepository":
        return None
    return await p.ctx.kube.find(R.OCIREPOSITORY, source.namespace, source.name)


def _annotation(obj: Obj | None, name: str) -> str | None:
    if not obj:
        return None
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(name)
    return str(value) if value is not None else None


def _held(obj: Obj | None) -> GateIdentity | None:
    text = _annotation(obj, ann.HELD)
    if not text:
        return None
    try:
        return parse_identity(text)
    except ValueError:
        return None


def _hr_part(target: Identity, via_chart_ref: bool) -> GateIdentity:
    """The part of the target identity the HelmRelease itself carries."""
    gate = to_gate(target)
    return GateIdentity(chart=None if via_chart_ref else gate.chart, images=gate.images)


def _has_change(part: GateIdentity) -> bool:
    return not part.is_empty


# --- Pending / Queued ---------------------------------------------------------------

async def acquire(p: Pass) -> Outcome:
    """Take the app's one-operation lock (``status.activeRequest``), or queue behind it."""
    kube = p.ctx.kube
    app_obj = await kube.get(R.MANAGEDAPP, p.app.metadata.namespace, p.app.metadata.name)
    active = (app_obj.get("status") or {}).get("activeRequest") or {}
    mine = {"kind": RequestKind.UPGRADE_REQUEST.value, "name": p.ur.metadata.name}
    if active and active != mine:
        holder_res = R.UPGRADEREQUEST if active.get("kind") == "UpgradeRequest" \
            else R.ROLLBACKREQUEST
        holder = await kube.find(holder_res, p.namespace, str(active.get("name")))
        phase = ((holder or {}).get("status") or {}).get("phase")
        if holder is not None and phase not in ("Succeeded", "Failed"):
            message = f"waiting for {active.get('kind')} {active.get('name')} to finish"
            if p.status.phase is UpgradePhase.QUEUED:
                return Outcome.waiting(message)
            return Outcome(goto=UpgradePhase.QUEUED, message=message)
    if active != mine:
        try:
            await kube.merge_patch(R.MANAGEDAPP, p.app.metadata.namespace, p.app.metadata.name, {
                "metadata": {"resourceVersion": app_obj["metadata"]["resourceVersion"]},
                "status": {"activeRequest": mine},
            }, sub="status")
        except KubeConflict:
            return Outcome.waiting("another request is taking the app's lock; retrying")
    return Outcome.finished()


# --- Preflight ----------------------------------------------------------------------

def _check(name: str, ok: bool, message: str, warn_only: bool = False) -> PreflightCheck:
    if ok:
        return PreflightCheck(name, PreflightResult.PASSED, message)
    return PreflightCheck(name, PreflightResult.WARNING if warn_only else PreflightResult.FAILED,
                          message)


def _ready(obj: Obj | None) -> tuple[bool, str]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True", str(cond.get("message", ""))
    return False, "no Ready condition yet"


def _resolve_target(p: Pass, hr: Obj, oci: Obj | None) -> Identity | None:
    spec = p.ur.spec
    if spec.origin is Origin.GIT and spec.target_version is None and not spec.target_images:
        held_hr, held_oci = _held(hr), _held(oci)
        chart = (held_oci.chart if held_oci else None) if p.via_chart_ref else (
            held_hr.chart if held_hr else None)
        held_images = held_hr.images if held_hr else ()
        if chart is None and not held_images:
            return None
        return Identity(version=chart, images=tuple(
            ImageTag(values_path=path, tag=tag) for path, tag in held_images if tag is not None))
    version = spec.target_version
    images = spec.target_images
    if version is None and not images and p.app.status.available_update is not None:
        version = p.app.status.available_update.version
        images = p.app.status.available_update.images
    if version is None and not images:
        return None
    return Identity(version=normalize_chart_version(version) if version else None, images=images)


async def _target_exists(p: Pass, hr: Obj, oci: Obj | None, version: str) -> PreflightCheck:
    name = "target-version-exists"
    try:
        if p.via_chart_ref and oci is not None:
            spec = oci.get("spec") or {}
            tags = await chartsource.list_oci_tags(str(spec.get("url")),
                                                   bool(spec.get("insecure")))
            return _check(name, version in tags,
                          f"tag {version} {'found' if version in tags else 'not found'} in "
                          f"{spec.get('url')} (tags: {', '.join(sorted(tags)[-8:])})")
        chart_spec = ((hr.get("spec") or {}).get("chart") or {}).get("spec") or {}
        source = chart_spec.get("sourceRef") or {}
        if source.get("kind", "HelmRepository") != "HelmRepository":
            return _check(name, False, f"cannot list versions of a {source.get('kind')} source",
                          warn_only=True)
        repo = await p.ctx.kube.find(R.HELMREPOSITORY,
                                     source.get("namespace") or hr["metadata"]["namespace"],
                                     str(source.get("name")))
        if repo is None:
            return _check(name, False, f"HelmRepository {source.get('name')} not found")
        url = str((repo.get("spec") or {}).get("url"))
        if url.startswith("oci://"):
            tags = await chartsource.list_oci_tags(f"{url.rstrip('/')}/{chart_spec.get('chart')}",
                                                   bool(repo["spec"].get("insecure")))
        else:
            tags = await chartsource.list_helm_repository_versions(url,
                                                                   str(chart_spec.get("chart")))
        found = version in tags
        return _check(name, found, f"chart {chart_spec.get('chart')} {version} "
                                   f"{'found' if found else 'not found'} in {url}")
    except ChartSourceError as exc:
        return _check(name, False, str(exc))


def _render_edit(p: Pass, text: str, path: str, target: Identity, hr_name: str,
                 hr_namespace: str) -> str:
    new = text
    if target.version and not p.via_chart_ref:
        new = yamledit.edit_chart_version(new, name=hr_name, version=target.version,
                                          namespace=hr_namespace, path=path)
    for image in target.images:
        new = yamledit.edit_values_image_tag(new, name=hr_name, values_path=image.values_path,
                                             tag=image.tag, namespace=hr_namespace, path=path)
    return new


async def _git_changes(p: Pass, target: Identity) -> dict[str, tuple[str, str]]:
    """``{path: (old text, new text)}`` of the commit that applies ``target``."""
    git_source = p.app.status.git
    if git_source is None or not git_source.file:
        raise FluxUpError(f"ManagedApp {p.app.metadata.name} has no Git file yet "
                          "(status.git.file); check its Discovered condition")
    git = await p.ctx.open_git(git_source, p.app.metadata.namespace or "")
    hr_namespace, hr_name = p.hr_ref
    changes: dict[str, tuple[str, str]] = {}
    current = await git.read_file(git_source.file)
    new = _render_edit(p, current.text, git_source.file, target, hr_name, hr_namespace)
    if new != current.text:
        changes[git_source.file] = (current.text, new)
    if p.via_chart_ref and target.version:
        source = p.app.status.chart_source
        assert source is not None
        for path in await git.list_files(git_source.path or ""):
            if not path.endswith((".yaml", ".yml")):
                continue
            text = changes[path][1] if path in changes else (await git.read_file(path)).text
            if not yamledit.find_documents(text, "OCIRepository", source.name, path=path):
                continue
            new = yamledit.edit_oci_tag(text, name=source.name, tag=target.version, path=path)
            old = changes[path][0] if path in changes else text
            if new != old:
                changes[path] = (old, new)
            break
        else:
            raise FluxUpError(f"OCIRepository {source.name} is not defined under "
                              f"{git_source.path or '/'} in {git_source.repository_url}")
    return changes


async def preflight(p: Pass) -> Outcome:
    """Check everything an upgrade needs; resolve the target; compute the exact Git diff."""
    hr = await _helm_release(p)
    hr_namespace, hr_name = p.hr_ref
    if hr is None:
        return Outcome.failed(Reason.PREFLIGHT_FAILED,
                              f"HelmRelease {hr_namespace}/{hr_name} not found")
    oci = await _oci_repository(p)
    checks = [_check("helmrelease-found", True, f"HelmRelease {hr_namespace}/{hr_name}")]
    labelled = ann.MANAGED_APP_LABEL in ((hr.get("metadata") or {}).get("labels") or {})
    checks.append(_check("gated", labelled, "the admission gate sees the HelmRelease"
                         if labelled else "the HelmRelease is not labelled for the gate yet"))
    target = _resolve_target(p, hr, oci)
    previous = Identity(version=p.app.status.current_version, images=p.app.status.current_images)
    if target is None:
        return Outcome.failed(Reason.PREFLIGHT_FAILED,
                              "no target version: set spec.targetVersion, or wait until the "
                              "ManagedApp reports an available update",
                              preflight=tuple(checks))
    if target.version and not is_exact_version(target.version):
        return Outcome.failed(Reason.PREFLIGHT_FAILED,
                              f"target {target.version!r} is a range; name one exact version")
    if target.version:
        checks.append(await _target_exists(p, hr, oci, target.version))
    same = to_gate(previous).satisfies(to_gate(target)) and to_gate(target).satisfies(
        to_gate(previous))
    checks.append(_check("target-differs", not same,
                         f"{p.app.metadata.name} already runs {to_gate(target).describe()}"
                         if same else f"{to_gate(previous).describe()} -> "
                         f"{to_gate(target).describe()}"))
    ready, why = _ready(hr)
    checks.append(_check("app-healthy", ready, why or "HelmRelease Ready", warn_only=True))
    snapshots_on = p.app.spec.volume_snapshots.enabled and not p.ur.spec.skip_snapshot
    if snapshots_on:
        pvcs = p.app.status.pvcs
        checks.append(_check("pvcs", bool(pvcs), f"{len(pvcs)} PVC(s) to snapshot: "
                             f"{', '.join(x.name for x in pvcs)}" if pvcs else
                             "no PVCs found; list spec.volumeSnapshots.pvcs or set "
                             "volumeSnapshots.enabled=false"))
        for pvc in pvcs:
            obj = await p.ctx.kube.find(R.PVC, pvc.namespace, pvc.name)
            phase = ((obj or {}).get("status") or {}).get("phase")
            checks.append(_check(f"pvc/{pvc.name}", phase == "Bound",
                                 f"PVC {pvc.namespace}/{pvc.name} is {phase or 'missing'}"))
        klass = p.app.status.volume_snapshot_class_name
        exists = bool(klass) and await p.ctx.kube.find(R.SNAPSHOTCLASS, None, klass or "") \
            is not None
        checks.append(_check("snapshot-class", exists, f"VolumeSnapshotClass {klass}"
                             if exists else "no usable VolumeSnapshotClass"))
    diff = None
    if p.ur.spec.origin is not Origin.GIT:
        try:
            changes = await _git_changes(p, target)
        except (YamlEditError, FluxUpError) as exc:
            checks.append(_check("git-edit", False, str(exc)))
            changes = {}
        else:
            checks.append(_check("git-edit", bool(changes), f"{len(changes)} file(s) change"
                                 if changes else "Git already has the target version"))
        diff = "".join(yamledit.diff_text(path, old, new)
                       for path, (old, new) in sorted(changes.items())) or None
    updates: dict[str, Any] = {"preflight": tuple(checks), "target_identity": target,
                               "previous_identity": previous, "git_diff": diff}
    failed = [c for c in checks if c.result is PreflightResult.FAILED]
    if failed:
        return Outcome.failed(Reason.PREFLIGHT_FAILED,
                              "preflight failed: " + "; ".join(c.message or c.name
                                                                for c in failed), **updates)
    if p.ur.spec.dry_run:
        return Outcome.finished(f"dry run: preflight passed; upgrading would change "
                                f"{to_gate(previous).describe()} -> "
                                f"{to_gate(target).describe()}", **updates)
    return Outcome.finished(**updates)


# --- Committing ---------------------------------------------------------------------

async def commit(p: Pass) -> Outcome:
    """Commit the bump to Git once (found again by its trailer), then ask Flux to apply."""
    git_source = p.app.status.git
    assert git_source is not None
    git = await p.ctx.open_git(git_source, p.app.metadata.namespace or "")
    sha = await git.find_commit(commitmsg.TRAILER_UPGRADE_REQUEST, p.request_id)
    target = p.target()
    if sha is None:
        changes = await _git_changes(p, target)
        if changes:
            names = [snapshots.build_snapshot_name(p.ur.metadata.name or "", pvc.name)
                     for pvc in p.app.status.pvcs]
            message = commitmsg.build_commit_message(
                p.app.metadata.name or "", to_gate(target).describe(),
                to_gate(p.status.previous_identity or Identity()).describe(),
                p.request_id, names)
            result = await git.commit_files({k: v[1] for k, v in changes.items()}, message)
            sha = result.sha
    await _request_flux_apply(p)
    return Outcome.finished(f"committed {sha[:12]}" if sha else "Git already had the target",
                            git_commit=sha)


async def _request_flux_apply(p: Pass) -> None:
    kube = p.ctx.kube
    ks_ref = p.app.spec.kustomization_ref
    hr = await _helm_release(p)
    labels = ((hr or {}).get("metadata") or {}).get("labels") or {}
    ks_name = ks_ref.name if ks_ref else labels.get("kustomize.toolkit.fluxcd.io/name")
    ks_ns = (ks_ref.namespace if ks_ref else None) or labels.get(
        "kustomize.toolkit.fluxcd.io/namespace") or "flux-system"
    if not ks_name:
        return
    ks = await kube.find(R.KUSTOMIZATION, ks_ns, ks_name)
    if ks is None:
        return
    source = (ks.get("spec") or {}).get("sourceRef") or {}
    if source.get("kind", "GitRepository") == "GitRepository":
        await flux.request_reconcile(kube, R.GITREPOSITORY, source.get("namespace") or ks_ns,
                                     str(source.get("name")))
    await flux.request_reconcile(kube, R.KUSTOMIZATION, ks_ns, ks_name)


# --- AwaitingApply ------------------------------------------------------------------

async def await_apply(p: Pass) -> Outcome:
    """Wait until Flux applied the change and the gate holds it (or it was approved)."""
    target = p.target()
    hr = await _helm_release(p)
    oci = await _oci_repository(p)
    hr_part = _hr_part(target, p.via_chart_ref)
    pending = []
    if _has_change(hr_part) and not _arrived(hr, hr_part):
        pending.append("HelmRelease")
    if p.via_chart_ref and target.version and not _arrived(
            oci, GateIdentity(chart=target.version)):
        pending.append("OCIRepository")
    if not pending:
        return Outcome.finished("the gate holds the new version")
    started = p.status.phase_started_at or p.ctx.now()
    if p.ur.spec.origin is not Origin.GIT and (p.ctx.now() - started).total_seconds() % 20 < 1.5:
        await _request_flux_apply(p)
    return Outcome.waiting(f"waiting for Flux to apply {' and '.join(pending)}")


def _arrived(obj: Obj | None, part: GateIdentity) -> bool:
    """The object asks for ``part``: held by the gate, or already approved for it."""
    held = _held(obj)
    if held is not None and part.satisfies(held):
        return True
    approved = _annotation(obj, ann.APPROVED)
    try:
        return approved is not None and part.satisfies(parse_identity(approved))
    except ValueError:
        return False


# --- Quiescing ----------------------------------------------------------------------

def _workload_res(kind: WorkloadKind) -> Resource:
    return R.STATEFULSET if kind is WorkloadKind.STATEFUL_SET else R.DEPLOYMENT


async def quiesce(p: Pass) -> Outcome:
    """Record the writers' replicas (first, in status), then scale them to zero."""
    kube = p.ctx.kube
    if not p.status.quiesced_replicas:
        refs = [(w.kind, w.name, w.namespace) for w in p.app.spec.quiesce.workloads] or [
            (w.kind, w.name, w.namespace) for w in p.app.status.workloads]
        recorded = []
        for kind, name, ref_namespace in refs:
            namespace = ref_namespace or p.hr_ref[0]
            obj = await kube.get(_workload_res(kind), namespace, name)
            replicas = (obj.get("spec") or {}).get("replicas")
            recorded.append(WorkloadReplicas(kind, name, namespace,
                                             1 if replicas is None else int(replicas)))
        if recorded:
            return Outcome.waiting("recorded replicas; scaling writers to zero",
                                   quiesced_replicas=tuple(recorded))
        return Outcome.finished("no workloads to quiesce")
    busy = []
    for rec in p.status.quiesced_replicas:
        res = _workload_res(rec.kind)
        obj = await kube.get(res, rec.namespace, rec.name)
        if (obj.get("spec") or {}).get("replicas") != 0:
            await kube.merge_patch(res, rec.namespace, rec.name, {"spec": {"replicas": 0}})
            busy.append(rec.name)
        elif int((obj.get("status") or {}).get("replicas") or 0) > 0:
            busy.append(rec.name)
    if busy:
        return Outcome.waiting(f"waiting for pods of {', '.join(busy)} to stop")
    return Outcome.finished("writers stopped")


async def _restore_replicas(p: Pass) -> None:
    for rec in p.status.quiesced_replicas:
        await p.ctx.kube.merge_patch(_workload_res(rec.kind), rec.namespace, rec.name,
                                     {"spec": {"replicas": rec.replicas}})


# --- Snapshotting -------------------------------------------------------------------

async def snapshot(p: Pass) -> Outcome:
    """Create one VolumeSnapshot per PVC (deterministic names) and wait for ReadyToUse."""
    kube = p.ctx.kube
    version = to_gate(p.target()).describe()
    seen: list[SnapshotStatus] = []
    for pvc in p.app.status.pvcs:
        body = snapshots.build_snapshot(pvc.namespace, p.ur.metadata.name or "",
                                        p.app.metadata.name or "", pvc.name,
                                        p.app.status.volume_snapshot_class_name, version)
        name = body["metadata"]["name"]
        obj = await kube.find(R.SNAPSHOT, pvc.namespace, name)
        if obj is None:
            try:
                obj = await kube.create(R.SNAPSHOT, pvc.namespace, body)
            except KubeConflict:
                obj = await kube.get(R.SNAPSHOT, pvc.namespace, name)
        state = snapshots.determine_snapshot_status(obj)
        seen.append(SnapshotStatus(
            name=name, namespace=pvc.namespace, pvc=pvc.name,
            ready_to_use=state.state is snapshots.SnapshotState.READY,
            restore_size=state.restore_size or None,
            error=state.message if state.state is snapshots.SnapshotState.FAILED else None))
    failed = [s for s in seen if s.error]
    if failed:
        return Outcome.failed(Reason.SNAPSHOT_FAILED, "snapshot failed: " + "; ".join(
            f"{s.name} (PVC {s.pvc}): {s.error}" for s in failed), snapshots=tuple(seen))
    ready = sum(s.ready_to_use for s in seen)
    if ready < len(seen):
        return Outcome.waiting(f"{ready}/{len(seen)} snapshots ReadyToUse",
                               snapshots=tuple(seen))
    return Outcome.finished(f"{ready} snapshot(s) ReadyToUse", snapshots=tuple(seen))


# --- Releasing ----------------------------------------------------------------------

async def release(p: Pass) -> Outcome:
    """Approve exactly the held identity, un-suspend, give writers their replicas back."""
    kube = p.ctx.kube
    target = p.target()
    hr_namespace, hr_name = p.hr_ref
    oci = await _oci_repository(p)
    if p.via_chart_ref and oci is not None and target.version:
        await _approve(p, R.OCIREPOSITORY, oci, GateIdentity(chart=target.version))
    hr = await _helm_release(p)
    if hr is not None:
        await _approve(p, R.HELMRELEASE, hr, _hr_part(target, p.via_chart_ref))
    await _restore_replicas(p)
    await flux.request_reconcile(kube, R.HELMRELEASE, hr_namespace, hr_name)
    return Outcome.finished("released to helm-controller")


async def _approve(p: Pass, res: Resource, obj: Obj, part: GateIdentity) -> None:
    meta = obj["metadata"]
    held = _held(obj)
    suspended = bool((obj.get("spec") or {}).get("suspend"))
    if held is not None and part.satisfies(held):
        identity_json = _annotation(obj, ann.HELD) or held.to_json()
    elif not suspended:
        return  # nothing held, nothing to release
    else:
        identity_json = part.to_json()
    if _annotation(obj, ann.APPROVED) == identity_json and not suspended:
        return
    await flux.approve_and_release(p.ctx.kube, res, meta["namespace"], meta["name"],
                                   identity_json, p.ur.metadata.name or "")


# --- Upgrading ----------------------------------------------------------------------

async def await_upgrade(p: Pass) -> Outcome:
    """Wait for helm-controller to report Ready for the new version, generation current."""
    hr = await _helm_release(p)
    if hr is None:
        return Outcome.failed(Reason.UPGRADE_FAILED, "HelmRelease disappeared during upgrade")
    status = hr.get("status") or {}
    current_gen = status.get("observedGeneration") == hr["metadata"].get("generation")
    history = status.get("history") or []
    latest = history[0] if history else {}
    target = p.target()
    version_ok = True
    if target.version:
        # charts from OCI carry the artifact digest as build metadata: 1.1.0+c90e84779b40
        running = str(latest.get("chartVersion", "")).split("+", 1)[0]
        version_ok = normalize_chart_version(running) == normalize_chart_version(
            target.version.split("+", 1)[0])
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready") or {}
    stalled = conditions.get("Stalled") or {}
    if current_gen and ready.get("status") == "True" and version_ok and \
            latest.get("status", "deployed") == "deployed":
        return Outcome.finished(f"helm-controller released {to_gate(target).describe()}")
    if current_gen and (stalled.get("status") == "True" or (
            ready.get("status") == "False" and ready.get("reason") in UPGRADE_FAILURE_REASONS)):
        reason = ready.get("reason") or stalled.get("reason")
        return Outcome.failed(Reason.UPGRADE_FAILED,
                              f"helm-controller: {reason}: {ready.get('message') or ''}".strip())
    return Outcome.waiting(f"waiting for helm-controller: {ready.get('reason', 'Progressing')}"
                           f" {ready.get('message', '')}".strip())


# --- HealthChecking -----------------------------------------------------------------

async def health_check(p: Pass) -> Outcome:
    """Every workload of the app ready with its new spec; then the optional HTTP check."""
    kube = p.ctx.kube
    waiting = []
    for wl in p.app.status.workloads:
        obj = await kube.find(_workload_res(wl.kind), wl.namespace, wl.name)
        if obj is None:
            continue
        spec, st = obj.get("spec") or {}, obj.get("status") or {}
        want = 1 if spec.get("replicas") is None else int(spec["replicas"])
        ok = (st.get("observedGeneration") == obj["metadata"].get("generation")
              and int(st.get("readyReplicas") or 0) >= want
              and int(st.get("updatedReplicas") or (want if wl.kind is WorkloadKind.STATEFUL_SET
                                                     else 0)) >= want)
        if not ok:
            waiting.append(f"{wl.kind}/{wl.name} {st.get('readyReplicas') or 0}/{want}")
    if waiting:
        return Outcome.waiting("waiting for workloads: " + ", ".join(waiting))
    check = p.app.spec.health_check.http
    if check is not None:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                resp = await client.get(check.url)
        except httpx.HTTPError as exc:
            return Outcome.waiting(f"HTTP check {check.url}: {exc}")
        if resp.status_code != check.expected_status:
            return Outcome.waiting(f"HTTP check {check.url} answered {resp.status_code}, "
                                   f"want {check.expected_status}")
    return Outcome.finished("upgrade succeeded; workloads healthy")


# --- End ----------------------------------------------------------------------------

async def finish(p: Pass, succeeded: bool) -> None:
    """Leave the app consistent: mark what runs, restore replicas, free the lock, prune."""
    kube = p.ctx.kube
    target = p.target()
    if succeeded and not p.ur.spec.dry_run:
        hr = await _helm_release(p)
        if hr is not None:
            await flux.mark_released(kube, R.HELMRELEASE, hr["metadata"]["namespace"],
                                     hr["metadata"]["name"],
                                     _hr_part(target, p.via_chart_ref).to_json())
    if not succeeded:
        await _restore_replicas(p)
    await _free_lock(p, succeeded)
    if succeeded and not p.ur.spec.dry_run:
        await prune_snapshots(p)


async def _free_lock(p: Pass, succeeded: bool | None) -> None:
    kube = p.ctx.kube
    app_obj = await kube.find(R.MANAGEDAPP, p.app.metadata.namespace, p.app.metadata.name)
    if app_obj is None:
        return
    patch: dict[str, Any] = {}
    active = (app_obj.get("status") or {}).get("activeRequest") or {}
    if active.get("name") == p.ur.metadata.name and active.get("kind") == "UpgradeRequest":
        patch["activeRequest"] = None
    if succeeded is not None and not p.ur.spec.dry_run:
        now = p.ctx.now()
        last = LastUpgrade(
            upgrade_request=p.ur.metadata.name or "",
            phase=UpgradePhase.SUCCEEDED if succeeded else UpgradePhase.FAILED,
            from_version=(p.status.previous_identity or Identity()).version,
            to_version=p.target().version, started_at=p.status.started_at, completed_at=now)
        patch["lastUpgrade"] = encode(last)
    if patch:
        await kube.merge_patch(R.MANAGEDAPP, p.app.metadata.namespace, p.app.metadata.name,
                               {"status": patch}, sub="status")


async def prune_snapshots(p: Pass) -> list[str]:
    """Delete snapshot sets beyond the retention policy (never the newest or in-flight)."""
    kube = p.ctx.kube
    policy = p.app.spec.volume_snapshots.retention_policy
    namespaces = {pvc.namespace for pvc in p.app.status.pvcs} or {p.namespace}
    found: list[Obj] = []
    for namespace in namespaces:
        found += await kube.list(R.SNAPSHOT, namespace,
                                 {snapshots.APP_LABEL: snapshots.label_safe(
                                     p.app.metadata.name or "")})
    requests = await kube.list(R.UPGRADEREQUEST, p.namespace)
    protected = {p.ur.metadata.name or ""} | {
        r["metadata"]["name"] for r in requests
        if (r.get("status") or {}).get("phase") not in {t.value for t in TERMINAL_UPGRADE_PHASES}
    }
    max_age = policy.max_age.to_timedelta() if policy.max_age else None
    expired = snapshots.select_expired(found, policy.keep_last, max_age, p.ctx.now(), protected)
    by_name = {s["metadata"]["name"]: s["metadata"]["namespace"] for s in found}
    for name in expired:
        await kube.delete(R.SNAPSHOT, by_name[name], name)
    return expired


async def undo(ctx: Context, ur: UpgradeRequest) -> None:
    """A request deleted in flight: give writers their replicas back and free the lock."""
    app = await load_app(ctx, ur)
    if app is None:
        return
    p = Pass(ctx, {}, ur, app, ur.status)
    if ur.status.phase not in (UpgradePhase.RELEASING, UpgradePhase.UPGRADING,
                               UpgradePhase.HEALTH_CHECKING):
        await _restore_replicas(p)
    await _free_lock(p, None)

