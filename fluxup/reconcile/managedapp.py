"""Reconcile a ManagedApp into a status a user can trust (one pass, one status write).

Called by :mod:`fluxup.handlers.managedapp` on every event and on a timer. A pass
loads the HelmRelease, labels it (and its OCIRepository) for the admission gate,
observes the deployed version from helm-controller's status, finds the Kustomization,
GitRepository and the file in Git that defines the release, discovers the PVCs and
workloads (:mod:`fluxup.logic.discovery`) and the VolumeSnapshotClass, and writes
conditions summarized into ``Ready``. The fields owned by the UpgradeRequest reconciler
(``activeRequest``, ``lastUpgrade``) and by Renovate ingestion (``availableUpdate(s)``)
are never written here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field, replace
from typing import Any

from fluxup.adapters.kube import Obj, R
from fluxup.api import annotations as ann
from fluxup.api._codec import encode
from fluxup.api.conditions import Condition, ConditionStatus, ConditionType, Reason, set_condition
from fluxup.api.managedapp import (
    ChartSource,
    ChartSourceKind,
    DiscoveredPVC,
    DiscoveredWorkload,
    GitSource,
    HelmReleaseInfo,
    ManagedApp,
)
from fluxup.api.meta import ImageTag, NamespacedObjectReference, WorkloadKind
from fluxup.errors import FluxUpError
from fluxup.logic import discovery, yamledit
from fluxup.logic.hold_requests import HoldState
from fluxup.logic.identity import GatedKind, determine_desired, parse_identity
from fluxup.logic.release_record import parse_release_gate
from fluxup.reconcile.announce import announce_available
from fluxup.reconcile.bypass import record_bypass
from fluxup.reconcile.context import Context
from fluxup.reconcile.holds import ensure_hold_handled
from fluxup.reconcile.release_gate import ensure_release_gate, ensure_request_for_record_hold

__all__ = ["HELD", "SNAPSHOT_CAPABLE", "reconcile_managedapp"]

log = logging.getLogger(__name__)

HELD = ConditionType.HELD.value
SNAPSHOT_CAPABLE = ConditionType.SNAPSHOT_CAPABLE.value


@dataclass
class _Observed:
    """What one pass found; turned into status at the end."""

    conditions: list[tuple[str, bool, str, str]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)

    def condition(self, type_: str, ok: bool, reason: str, message: str) -> None:
        self.conditions.append((type_, ok, str(reason), message))


def _labels(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _annotations(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


async def _ensure_gate_metadata(ctx: Context, app: ManagedApp, hr: Obj, oci: Obj | None) -> None:
    """Label the release (and its OCIRepository) and publish the image value paths."""
    name = app.metadata.name or ""
    paths = json.dumps([i.values_path for i in app.spec.version_policy.images])
    for res, obj, want_paths in ((R.HELMRELEASE, hr, True), (R.OCIREPOSITORY, oci, False)):
        if obj is None:
            continue
        patch: dict[str, Any] = {}
        owner = _labels(obj).get(ann.MANAGED_APP_LABEL)
        # An OCIRepository shared by several apps keeps the first app's label (its hold
        # names one request); line 2 holds every other app's release until it is protected.
        shared = res is R.OCIREPOSITORY and owner and owner != name
        if owner != name and not shared:
            patch.setdefault("metadata", {})["labels"] = {ann.MANAGED_APP_LABEL: name}
        notes: dict[str, str] = {}
        if want_paths and _annotations(obj).get(ann.IMAGE_PATHS) != paths:
            notes[ann.IMAGE_PATHS] = paths
        if want_paths and paths == _annotations(obj).get(ann.IMAGE_PATHS):
            released = _at_rest_identity(obj)
            if released is not None and _annotations(obj).get(ann.RELEASED) != released:
                notes[ann.RELEASED] = released
        if notes:
            patch.setdefault("metadata", {})["annotations"] = notes
        if patch:
            meta = obj["metadata"]
            await ctx.kube.merge_patch(res, meta["namespace"], meta["name"], patch)


def _at_rest_identity(hr: Obj) -> str | None:
    """The identity a HelmRelease at rest runs (its spec: not held, not suspended,
    reconciled at its generation and Ready), or ``None`` when it is not at rest.

    Recorded as ``fluxup.dev/released`` so that, once a later change is held, the gate
    still knows where the running chart came from (a held spec is not what runs)."""
    notes, spec = _annotations(hr), hr.get("spec") or {}
    status = hr.get("status") or {}
    conditions = status.get("conditions") or []
    ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
    if (
        ann.HELD in notes
        or spec.get("suspend")
        or status.get("observedGeneration") != (hr.get("metadata") or {}).get("generation")
        or ready.get("status") != "True"
    ):
        return None
    desired = determine_desired(GatedKind.HELM_RELEASE, hr)
    if desired.problems:
        return None
    identity = desired.identity
    if identity.chart is None and not spec.get("chartRef"):
        version = discovery.determine_deployed_version(hr)  # a range: what it resolved to
        identity = replace(identity, chart=version) if version else identity
    return identity.to_json()


async def _chart_source(ctx: Context, hr: Obj, seen: _Observed) -> Obj | None:
    """Record the chart source; return the OCIRepository when ``chartRef`` uses one."""
    source = discovery.determine_chart_source(hr)
    if source is None:
        return None
    res = {
        "HelmRepository": R.HELMREPOSITORY,
        "OCIRepository": R.OCIREPOSITORY,
        "GitRepository": R.GITREPOSITORY,
    }.get(source.kind)
    obj = await ctx.kube.find(res, source.namespace, source.name) if res else None
    url = str(((obj or {}).get("spec") or {}).get("url") or "") or None
    try:
        kind = ChartSourceKind(source.kind)
    except ValueError:
        kind = None
    if kind is not None:
        seen.status["chartSource"] = encode(ChartSource(kind, source.name, source.namespace, url))
    return obj if source.kind == "OCIRepository" else None


async def _ensure_holds_handled(
    ctx: Context, app_obj: Obj, hr: Obj, oci: Obj | None
) -> list[str]:
    """Level-triggered twin of the hold and bypass watch reactions: every unapproved
    hold on the app's release or chart source has a request, every bypass is audited.
    Returns what the user must know about holds whose request has ended."""
    name = app_obj["metadata"]["name"]
    notes = []
    for obj in (hr, oci):
        if obj is None or _labels(obj).get(ann.MANAGED_APP_LABEL) != name:
            continue  # a shared OCIRepository's hold belongs to the app it is labelled for
        handling = await ensure_hold_handled(ctx, app_obj, obj)
        if handling is not None and handling.state is HoldState.ENDED:
            notes.append(handling.message)
        await record_bypass(ctx, obj)
    return notes


def _gating(
    hr: Obj, oci: Obj | None, recorded: bool, seen: _Observed, notes: list[str]
) -> None:
    desired = determine_desired(GatedKind.HELM_RELEASE, hr)
    ungated = list(desired.ungated)
    if discovery.determine_chart_source(hr) and (hr.get("spec") or {}).get("chartRef"):
        ungated = [u for u in ungated if "chart version" not in u]
        if oci is not None:
            ungated += list(determine_desired(GatedKind.OCI_REPOSITORY, oci).ungated)
    if not recorded:
        seen.condition(
            ConditionType.GATED,
            False,
            Reason.RELEASE_NOT_RECORDED,
            "the Helm release is not recorded for the release-record gate yet",
        )
    elif ungated:
        seen.condition(
            ConditionType.GATED,
            True,
            Reason.VERSION_RANGE,
            "; ".join(ungated) + ": the source resolves new versions without an object "
            "change, so they are held at Helm's release record (line 2) rather than at "
            "apply time; pin an exact version to have them held before Flux fetches them",
        )
    else:
        seen.condition(
            ConditionType.GATED,
            True,
            Reason.EXACT_VERSION,
            "every version change is held until snapshots are ready (at apply time and at "
            "Helm's release record)",
        )
    held = []
    for obj in (hr, oci):
        if obj is None:
            continue
        text = _annotations(obj).get(ann.HELD)
        approved = _annotations(obj).get(ann.APPROVED)
        if text and text != approved:
            try:
                held.append(f"{obj.get('kind')} {parse_identity(text).describe()}")
            except ValueError:
                held.append(f"{obj.get('kind')} (unreadable hold)")
    seen.condition(
        HELD,
        bool(held),
        "Held" if held else "NotHeld",
        "; ".join(["holding " + ", ".join(held), *notes]) if held else "nothing held",
    )


def _current(app: ManagedApp, hr: Obj, seen: _Observed) -> None:
    deployed = discovery.determine_deployed_version(hr)
    if deployed and (hr.get("spec") or {}).get("chartRef"):
        deployed = deployed.split("+", 1)[0]  # OCI charts: version+digest
    seen.status["currentVersion"] = deployed
    values = (hr.get("spec") or {}).get("values") or {}
    released = _annotations(hr).get(ann.RELEASED)
    released_images: dict[str, str | None] = {}
    if released:
        try:
            released_images = dict(parse_identity(released).images)
        except ValueError:
            released_images = {}
    images = []
    for policy in app.spec.version_policy.images:
        tag = released_images.get(policy.values_path)
        if tag is None:
            cur: Any = values
            for part in policy.values_path.split("."):
                cur = cur.get(part) if isinstance(cur, dict) else None
            tag = str(cur) if cur is not None else None
        if tag is not None:
            images.append(ImageTag(values_path=policy.values_path, tag=tag, name=policy.name))
    seen.status["currentImages"] = [encode(i) for i in images]


async def _git(ctx: Context, app: ManagedApp, hr: Obj, seen: _Observed) -> None:
    ref = app.spec.kustomization_ref
    found = discovery.determine_kustomization(hr)
    ks_ns, ks_name = (ref.namespace_or("flux-system"), ref.name) if ref else (found or ("", ""))
    ks = await ctx.kube.find(R.KUSTOMIZATION, ks_ns, ks_name) if ks_name else None
    if ks is None:
        seen.condition(
            ConditionType.DISCOVERED,
            False,
            Reason.KUSTOMIZATION_NOT_FOUND,
            f"no Flux Kustomization applies HelmRelease {hr['metadata']['name']} "
            "(set spec.kustomizationRef)",
        )
        return
    source = (ks.get("spec") or {}).get("sourceRef") or {}
    repo = await ctx.kube.find(
        R.GITREPOSITORY, source.get("namespace") or ks_ns, str(source.get("name"))
    )
    if repo is None:
        seen.condition(
            ConditionType.DISCOVERED,
            False,
            Reason.KUSTOMIZATION_NOT_FOUND,
            f"GitRepository {source.get('name')} of Kustomization {ks_name} not found",
        )
        return
    url = str(repo["spec"]["url"])
    branch = ((repo["spec"].get("ref") or {}).get("branch")) or None
    path = str((ks.get("spec") or {}).get("path") or "").strip("./").strip("/")
    repo_ref = NamespacedObjectReference(repo["metadata"]["name"], repo["metadata"]["namespace"])
    previous = app.status.git
    file = app.spec.git_path
    if not file and previous and (previous.repository_url, previous.path,
                                  previous.git_repository_ref) == (url, path, repo_ref):
        file = previous.file
    git_source = GitSource(url, branch, path, file, repo_ref)
    if not file:
        file = await _find_file(ctx, app, git_source, hr)
        git_source = GitSource(url, branch, path, file, repo_ref)
    seen.status["git"] = encode(git_source)
    if file:
        seen.condition(
            ConditionType.DISCOVERED,
            True,
            Reason.SUCCEEDED,
            f"HelmRelease defined in {file} of {url}",
        )
    else:
        seen.condition(
            ConditionType.DISCOVERED,
            False,
            Reason.GIT_FILE_NOT_FOUND,
            f"no file under {path or '/'} in {url} defines HelmRelease "
            f"{hr['metadata']['name']}; set spec.gitPath",
        )


async def _find_file(ctx: Context, app: ManagedApp, source: GitSource, hr: Obj) -> str | None:
    try:
        git = await ctx.open_git(source, app.metadata.namespace or "")
        for path in await git.list_files(source.path or ""):
            if not path.endswith((".yaml", ".yml")):
                continue
            text = (await git.read_file(path)).text
            try:
                docs = await asyncio.to_thread(  # parsing is CPU work: off the event loop
                    yamledit.find_documents, text, "HelmRelease", hr["metadata"]["name"],
                    path=path,
                )
            except FluxUpError:
                continue
            if docs:
                return path
    except FluxUpError as exc:
        log.warning("cannot search %s for the HelmRelease: %s", source.repository_url, exc)
    return None


async def _volumes(ctx: Context, app: ManagedApp, hr: Obj, seen: _Observed) -> None:
    kube = ctx.kube
    namespace = (hr.get("spec") or {}).get("targetNamespace") or hr["metadata"]["namespace"]
    pvcs = await kube.list(R.PVC, namespace)
    sts = await kube.list(R.STATEFULSET, namespace)
    deps = await kube.list(R.DEPLOYMENT, namespace)
    selectors = discovery.release_selectors(hr)

    def mine(obj: Obj) -> bool:
        """Created for this release: carries every label of one of its selectors."""
        labels = _labels(obj)
        return any(all(labels.get(k) == v for k, v in sel.items()) for sel in selectors)

    mine_sts = [s for s in sts if mine(s)]
    mine_deps = [d for d in deps if mine(d)]
    explicit = app.spec.volume_snapshots.pvcs
    if explicit:
        names = [p.name for p in explicit]
        missing = sorted(set(names) - {p["metadata"]["name"] for p in pvcs})
        if missing:
            seen.condition(
                SNAPSHOT_CAPABLE,
                False,
                Reason.PVC_NOT_FOUND,
                f"PVC(s) {', '.join(missing)} not found in {namespace}",
            )
    else:
        pods = [p for p in await kube.list(R.POD, namespace) if mine(p)]
        labelled = {p["metadata"]["name"] for p in pvcs if mine(p)}
        names = discovery.determine_pvcs(pvcs, mine_sts, mine_deps, pods, labelled)
    by_name = {p["metadata"]["name"]: p for p in pvcs}
    chosen = [by_name[n] for n in names if n in by_name]
    seen.status["pvcs"] = [
        encode(
            DiscoveredPVC(
                name=p["metadata"]["name"],
                namespace=namespace,
                storage_class_name=(p.get("spec") or {}).get("storageClassName"),
                capacity=((p.get("status") or {}).get("capacity") or {}).get("storage"),
            )
        )
        for p in chosen
    ]
    workloads = discovery.determine_workloads(mine_sts, mine_deps, names)
    seen.status["workloads"] = [
        encode(
            DiscoveredWorkload(
                kind=WorkloadKind(w.kind), name=w.name, namespace=namespace, replicas=w.replicas
            )
        )
        for w in workloads
    ]
    if not app.spec.volume_snapshots.enabled:
        seen.condition(
            SNAPSHOT_CAPABLE, False, Reason.SNAPSHOTS_SKIPPED, "volumeSnapshots.enabled is false"
        )
        return
    if any(c[0] == SNAPSHOT_CAPABLE for c in seen.conditions):
        return
    if not chosen:
        seen.condition(
            SNAPSHOT_CAPABLE,
            False,
            Reason.PVC_NOT_FOUND,
            f"no PVCs of the release found in {namespace}",
        )
        return
    provisioners = set()
    for pvc in chosen:
        klass = (pvc.get("spec") or {}).get("storageClassName")
        annotated = _annotations(pvc).get("volume.kubernetes.io/storage-provisioner")
        if annotated:
            provisioners.add(annotated)
        elif klass:
            sc = await kube.find(R.STORAGECLASS, None, klass)
            if sc:
                provisioners.add(str(sc.get("provisioner")))
    classes = await kube.list(R.SNAPSHOTCLASS)
    name, reason = discovery.choose_snapshot_class(
        app.spec.volume_snapshots.volume_snapshot_class_name, classes, provisioners
    )
    seen.status["volumeSnapshotClassName"] = name
    if name:
        seen.condition(
            SNAPSHOT_CAPABLE,
            True,
            Reason.SUCCEEDED,
            f"{len(chosen)} PVC(s) snapshot with class {name} ({reason})",
        )
    else:
        seen.condition(SNAPSHOT_CAPABLE, False, Reason.SNAPSHOT_CLASS_NOT_FOUND, reason)


def _summarize(
    app: ManagedApp, seen: _Observed, generation: int | None, now: Any
) -> list[dict[str, Any]]:
    conditions = app.status.conditions
    for type_, ok, reason, message in seen.conditions:
        conditions = set_condition(
            conditions,
            Condition(
                type_,
                ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
                reason,
                message,
                now,
                generation,
            ),
        )
    required = [ConditionType.DISCOVERED.value, ConditionType.GATED.value]
    if app.spec.volume_snapshots.enabled:
        required.append(SNAPSHOT_CAPABLE)
    observed = {c[0]: c for c in seen.conditions}
    problems = [observed[t][3] for t in required if t in observed and not observed[t][1]]
    problems += [f"{t} unknown" for t in required if t not in observed]
    if problems:
        ready = Condition(
            ConditionType.READY,
            ConditionStatus.FALSE,
            Reason.FAILED,
            "; ".join(problems),
            now,
            generation,
        )
    else:
        ready = Condition(
            ConditionType.READY,
            ConditionStatus.TRUE,
            Reason.SUCCEEDED,
            f"managing {app.spec.helm_release_ref.name} at "
            f"{seen.status.get('currentVersion') or 'unknown version'}",
            now,
            generation,
        )
    conditions = set_condition(conditions, ready)
    return [encode(c) for c in conditions]


async def reconcile_managedapp(ctx: Context, obj: Obj) -> None:
    """One level-triggered pass over a ManagedApp."""
    app = ManagedApp.from_dict(obj)
    now = ctx.now()
    seen = _Observed()
    hr_ns, hr_name = (
        app.spec.helm_release_ref.namespace_or(app.metadata.namespace or ""),
        app.spec.helm_release_ref.name,
    )
    hr = await ctx.kube.find(R.HELMRELEASE, hr_ns, hr_name)
    if hr is None:
        seen.condition(
            ConditionType.DISCOVERED,
            False,
            Reason.HELM_RELEASE_NOT_FOUND,
            f"HelmRelease {hr_ns}/{hr_name} not found",
        )
    else:
        oci = await _chart_source(ctx, hr, seen)
        notes: list[str] = []
        if not app.spec.suspend:
            await _ensure_gate_metadata(ctx, app, hr, oci)
            recorded = await ensure_release_gate(ctx, obj, app, hr)
            await ensure_request_for_record_hold(ctx, obj, app, hr)
            notes = await _ensure_holds_handled(ctx, obj, hr, oci)
        else:
            recorded = parse_release_gate(obj) is not None
        chart_spec = ((hr.get("spec") or {}).get("chart") or {}).get("spec") or {}
        seen.status["helmRelease"] = encode(
            HelmReleaseInfo(
                api_version=str(hr.get("apiVersion")),
                name=hr_name,
                namespace=hr_ns,
                chart_name=chart_spec.get("chart") or None,
                app_version=((hr.get("status") or {}).get("history") or [{}])[0].get("appVersion"),
                target_namespace=(hr.get("spec") or {}).get("targetNamespace"),
            )
        )
        _current(app, hr, seen)
        _gating(hr, oci, recorded, seen, notes)
        await _git(ctx, app, hr, seen)
        await _volumes(ctx, app, hr, seen)
    old_ready = next((c for c in app.status.conditions if c.type == ConditionType.READY), None)
    status = dict(seen.status)
    status["observedGeneration"] = app.metadata.generation
    status["conditions"] = _summarize(app, seen, app.metadata.generation, now)
    await ctx.kube.merge_patch(
        R.MANAGEDAPP,
        app.metadata.namespace,
        app.metadata.name or "",
        {"status": status},
        sub="status",
    )
    await announce_available(ctx, obj, app)
    new_ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    if (
        old_ready is None
        or old_ready.status.value != new_ready["status"]
        or old_ready.message != new_ready["message"]
    ):
        await ctx.events.record(
            obj,
            "Ready" if new_ready["status"] == "True" else "NotReady",
            new_ready["message"],
            warning=new_ready["status"] != "True",
        )
