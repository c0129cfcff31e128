"""Discover what a ManagedApp covers from the objects Flux and Helm created.

Pure functions over plain Kubernetes object dicts, called by the ManagedApp reconciler
after it has listed the objects: the Helm release name and chart source of a
HelmRelease (any served API version), the Kustomization that applied it (Flux's
labels), the PVCs of the release (helm-controller labels, ``app.kubernetes.io/instance``,
StatefulSet ``volumeClaimTemplates`` — which still name the PVCs when the app is scaled
to zero — and Pods' volumes), the workloads that mount them, and the
VolumeSnapshotClass whose driver matches the PVCs' provisioner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ChartSource",
    "Workload",
    "choose_snapshot_class",
    "determine_chart_source",
    "determine_deployed_version",
    "determine_kustomization",
    "determine_pvcs",
    "determine_release_name",
    "determine_workloads",
    "release_selectors",
]

Obj = Mapping[str, Any]

HELM_NAME_LABEL = "helm.toolkit.fluxcd.io/name"
HELM_NAMESPACE_LABEL = "helm.toolkit.fluxcd.io/namespace"
KUSTOMIZE_NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
KUSTOMIZE_NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace"
INSTANCE_LABEL = "app.kubernetes.io/instance"
DEFAULT_CLASS_ANNOTATION = "snapshot.storage.kubernetes.io/is-default-class"


def _get(obj: Obj, *path: str) -> Any:
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


@dataclass(frozen=True)
class ChartSource:
    """Where a HelmRelease's chart comes from.

    ``kind`` is ``HelmRepository``/``GitRepository``/``Bucket`` for ``spec.chart`` and
    ``OCIRepository``/``HelmChart`` for ``spec.chartRef``; ``version`` is the requested
    chart version (``spec.chart.spec.version``), empty for ``chartRef``.
    """

    kind: str
    name: str
    namespace: str
    chart: str = ""
    version: str = ""
    via_chart_ref: bool = False


@dataclass(frozen=True)
class Workload:
    """A Deployment or StatefulSet of the release, with the PVCs it mounts."""

    kind: str
    name: str
    replicas: int
    ready_replicas: int
    pvcs: tuple[str, ...] = field(default=())

    @property
    def ready(self) -> bool:
        return self.ready_replicas >= self.replicas


def determine_release_name(helm_release: Obj) -> str:
    """The Helm release name helm-controller uses (``spec.releaseName`` or derived)."""
    explicit = _get(helm_release, "spec", "releaseName")
    if explicit:
        return str(explicit)
    name = str(_get(helm_release, "metadata", "name") or "")
    target = _get(helm_release, "spec", "targetNamespace")
    release = f"{target}-{name}" if target else name
    if len(release) > 53:  # helm-controller shortens long names the same way
        import hashlib

        digest = hashlib.sha256(release.encode()).hexdigest()[:12]
        release = f"{release[:40]}-{digest}"
    return release


def determine_chart_source(helm_release: Obj) -> ChartSource | None:
    """The chart source of a HelmRelease, or ``None`` if the spec names none."""
    namespace = str(_get(helm_release, "metadata", "namespace") or "")
    ref = _get(helm_release, "spec", "chartRef")
    if isinstance(ref, Mapping) and ref.get("name"):
        return ChartSource(
            kind=str(ref.get("kind", "OCIRepository")),
            name=str(ref["name"]),
            namespace=str(ref.get("namespace") or namespace),
            via_chart_ref=True,
        )
    spec = _get(helm_release, "spec", "chart", "spec")
    if isinstance(spec, Mapping):
        source = spec.get("sourceRef") or {}
        return ChartSource(
            kind=str(source.get("kind", "HelmRepository")),
            name=str(source.get("name", "")),
            namespace=str(source.get("namespace") or namespace),
            chart=str(spec.get("chart", "")),
            version=str(spec.get("version", "") or ""),
        )
    return None


def determine_kustomization(obj: Obj) -> tuple[str, str] | None:
    """``(namespace, name)`` of the Kustomization that applied ``obj`` (Flux's labels)."""
    labels = _get(obj, "metadata", "labels") or {}
    name = labels.get(KUSTOMIZE_NAME_LABEL)
    if not name:
        return None
    return str(labels.get(KUSTOMIZE_NAMESPACE_LABEL, "flux-system")), str(name)


def determine_deployed_version(helm_release: Obj) -> str | None:
    """The chart version running now, from status (never from spec)."""
    history = _get(helm_release, "status", "history")
    if isinstance(history, list) and history and isinstance(history[0], Mapping):
        version = history[0].get("chartVersion")
        if version and history[0].get("status") in (None, "deployed", "superseded"):
            return str(version)
        if version:
            # the newest attempt failed; the version running is the last deployed one
            for entry in history[1:]:
                if isinstance(entry, Mapping) and entry.get("status") in ("deployed", "superseded"):
                    found = entry.get("chartVersion")
                    return str(found) if found else None
            return None
    revision = _get(helm_release, "status", "lastAppliedRevision")  # v2beta1
    return str(revision) if revision else None


def release_selectors(helm_release: Obj) -> list[dict[str, str]]:
    """Label selectors that find objects helm-controller created for this release."""
    name = str(_get(helm_release, "metadata", "name") or "")
    namespace = str(_get(helm_release, "metadata", "namespace") or "")
    return [
        {HELM_NAME_LABEL: name, HELM_NAMESPACE_LABEL: namespace},
        {INSTANCE_LABEL: determine_release_name(helm_release)},
    ]


def _claim_names_of_pod_spec(pod_spec: Obj) -> list[str]:
    names = []
    for volume in pod_spec.get("volumes") or []:
        claim = (volume or {}).get("persistentVolumeClaim") or {}
        if claim.get("claimName"):
            names.append(str(claim["claimName"]))
    return names


def _statefulset_claims(sts: Obj, existing: set[str]) -> list[str]:
    """PVC names of a StatefulSet's claim templates, including scaled-down ordinals."""
    name = str(_get(sts, "metadata", "name"))
    replicas = int(_get(sts, "spec", "replicas") or 0)
    out = []
    for template in _get(sts, "spec", "volumeClaimTemplates") or []:
        tname = str(_get(template, "metadata", "name"))
        prefix = f"{tname}-{name}-"
        ordinals = {
            int(p[len(prefix) :])
            for p in existing
            if p.startswith(prefix) and p[len(prefix) :].isdigit()
        }
        ordinals |= set(range(replicas))
        out += [f"{prefix}{i}" for i in sorted(ordinals) if f"{prefix}{i}" in existing]
    return out


def determine_pvcs(
    pvcs: Sequence[Obj],
    statefulsets: Sequence[Obj],
    deployments: Sequence[Obj],
    pods: Sequence[Obj],
    labelled: Iterable[str],
) -> list[str]:
    """Names of the release's PVCs that exist, sorted.

    ``labelled`` are PVCs found by the release's labels; the workloads' templates and the
    pods' volumes add claims that carry no release labels.
    """
    existing = {str(_get(p, "metadata", "name")) for p in pvcs}
    found = set(labelled) & existing
    for sts in statefulsets:
        found.update(_statefulset_claims(sts, existing))
        found.update(_claim_names_of_pod_spec(_get(sts, "spec", "template", "spec") or {}))
    for dep in deployments:
        found.update(_claim_names_of_pod_spec(_get(dep, "spec", "template", "spec") or {}))
    for pod in pods:
        found.update(_claim_names_of_pod_spec(_get(pod, "spec") or {}))
    return sorted(found & existing)


def determine_workloads(
    statefulsets: Sequence[Obj], deployments: Sequence[Obj], pvcs: Sequence[str]
) -> list[Workload]:
    """The release's workloads, each with the (selected) PVCs it mounts."""
    wanted = set(pvcs)
    out = []
    for kind, items in (("StatefulSet", statefulsets), ("Deployment", deployments)):
        for obj in items:
            name = str(_get(obj, "metadata", "name"))
            mounts = set(_claim_names_of_pod_spec(_get(obj, "spec", "template", "spec") or {}))
            if kind == "StatefulSet":
                mounts |= set(_statefulset_claims(obj, wanted))
            replicas = _get(obj, "spec", "replicas")
            out.append(
                Workload(
                    kind=kind,
                    name=name,
                    replicas=1 if replicas is None else int(replicas),
                    ready_replicas=int(_get(obj, "status", "readyReplicas") or 0),
                    pvcs=tuple(sorted(mounts & wanted)),
                )
            )
    return out


def choose_snapshot_class(
    explicit: str | None, classes: Sequence[Obj], provisioners: Iterable[str]
) -> tuple[str | None, str]:
    """Pick the VolumeSnapshotClass; return ``(name or None, reason)``.

    An explicit name must exist. Otherwise the class whose ``driver`` matches every PVC
    provisioner wins, preferring the one annotated as default.
    """
    by_name = {str(_get(c, "metadata", "name")): c for c in classes}
    drivers = set(provisioners)
    if explicit:
        if explicit not in by_name:
            return None, f"VolumeSnapshotClass {explicit!r} does not exist"
        driver = by_name[explicit].get("driver")
        if drivers and drivers != {driver}:
            return None, (
                f"VolumeSnapshotClass {explicit!r} uses driver {driver!r} but the "
                f"PVCs are provisioned by {sorted(drivers)}"
            )
        return explicit, "explicit"
    if len(drivers) > 1:
        return None, f"PVCs use several provisioners {sorted(drivers)}; name a class explicitly"
    matching = [c for c in classes if c.get("driver") in drivers]
    if not matching:
        return None, f"no VolumeSnapshotClass for driver(s) {sorted(drivers)}"
    matching.sort(
        key=lambda c: (
            _get(c, "metadata", "annotations", DEFAULT_CLASS_ANNOTATION) != "true",
            str(_get(c, "metadata", "name")),
        )
    )
    return str(_get(matching[0], "metadata", "name")), "matched by driver"
