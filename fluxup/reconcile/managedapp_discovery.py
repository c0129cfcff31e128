"""Discovery for the ManagedApp reconciler: the chart source, the Git file, the volumes.

Called once per pass by :mod:`fluxup.reconcile.managedapp`, which owns the status write.
Each ``observe_*`` reads the cluster (and Git) and records what it found — status fields
and ``Discovered``/``SnapshotCapable`` conditions — in an
:class:`~fluxup.logic.managedapp_status.Observation`; the decisions themselves live in
:mod:`fluxup.logic.discovery`. Changes nothing anywhere.
"""

from __future__ import annotations

import asyncio
import logging

from fluxup.adapters.kube import Obj, R
from fluxup.api._codec import encode
from fluxup.api.conditions import ConditionType, Reason
from fluxup.api.managedapp import (
    ChartSource,
    ChartSourceKind,
    DiscoveredPVC,
    DiscoveredWorkload,
    GitSource,
    ManagedApp,
)
from fluxup.api.meta import NamespacedObjectReference, WorkloadKind
from fluxup.errors import FluxUpError
from fluxup.logic import discovery, yamledit
from fluxup.logic.managedapp_status import Observation
from fluxup.reconcile.context import Context

__all__ = ["SNAPSHOT_CAPABLE", "observe_chart_source", "observe_git", "observe_volumes"]

log = logging.getLogger(__name__)

SNAPSHOT_CAPABLE = ConditionType.SNAPSHOT_CAPABLE.value


def _labels(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _annotations(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


async def observe_chart_source(ctx: Context, hr: Obj, seen: Observation) -> Obj | None:
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


async def observe_git(ctx: Context, app: ManagedApp, hr: Obj, seen: Observation) -> None:
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


async def observe_volumes(ctx: Context, app: ManagedApp, hr: Obj, seen: Observation) -> None:
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
    # (namespace, name) → PVC; an explicit PVC may name its own namespace (the webhook
    # allows that only with cross-namespace references switched on)
    found = {(namespace, p["metadata"]["name"]): p for p in pvcs}
    if explicit:
        wanted = [(p.namespace or namespace, p.name) for p in explicit]
        for other in sorted({ns for ns, _ in wanted} - {namespace}):
            found.update({(other, p["metadata"]["name"]): p
                          for p in await kube.list(R.PVC, other)})
        missing = sorted(f"{ns}/{n}" for ns, n in set(wanted) - set(found))
        if missing:
            seen.condition(
                SNAPSHOT_CAPABLE,
                False,
                Reason.PVC_NOT_FOUND,
                f"PVC(s) {', '.join(missing)} not found",
            )
    else:
        pods = [p for p in await kube.list(R.POD, namespace) if mine(p)]
        labelled = {p["metadata"]["name"] for p in pvcs if mine(p)}
        wanted = [(namespace, n) for n in
                  discovery.determine_pvcs(pvcs, mine_sts, mine_deps, pods, labelled)]
    names = [n for ns, n in wanted if ns == namespace]  # the workloads' own claims
    chosen = [(ns, found[(ns, n)]) for ns, n in wanted if (ns, n) in found]
    seen.status["pvcs"] = [
        encode(
            DiscoveredPVC(
                name=p["metadata"]["name"],
                namespace=ns,
                storage_class_name=(p.get("spec") or {}).get("storageClassName"),
                capacity=((p.get("status") or {}).get("capacity") or {}).get("storage"),
            )
        )
        for ns, p in chosen
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
    if seen.has(SNAPSHOT_CAPABLE):
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
    for _, pvc in chosen:
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
