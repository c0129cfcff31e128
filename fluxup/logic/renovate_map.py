"""Map Renovate's findings (``packageFiles → deps → updates``) onto ManagedApps by Git path.

Called by the Renovate ingest reconciler (:mod:`fluxup.reconcile.renovate`) with one
parsed :class:`~fluxup.logic.renovate_report.RepositoryReport` and the ManagedApps whose
Git discovery (``status.git``) points into that repository. Which dep belongs to which
app and what it changes:

* the **chart** of a HelmRelease from a HelmRepository: manager ``flux``, in the app's
  HelmRelease file, ``depName`` = the chart (datasource ``helm``, or ``docker`` for an
  OCI HelmRepository, whose package is ``<host>/<path>/<chart>``);
* the **chart** of a HelmRelease with ``chartRef`` to an OCIRepository: the OCIRepository's
  ``ref.tag`` (datasource ``docker``, package = its ``url`` without ``oci://``), in a file
  of the app's directory;
* **images** at the versionPolicy's value paths: datasource ``docker`` whose package is
  the policy's image (HelmRelease values, ``values.yaml``); other images in the app's
  directory (plain manifests) are listed as candidates without a value path.

A file belongs to the app whose HelmRelease it is, else to the one app whose HelmRelease
sits in the same directory or the nearest directory above (a directory shared by several
apps gives files other than their HelmReleases to none). A dep seen by several managers
or files is one candidate; every offered version is kept with its update type.
``kubernetes-api`` apiVersion bumps and skipped deps are not app versions and are ignored.
Pure; no I/O.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fluxup.api.managedapp import ChartSourceKind, ManagedApp, UpdateSource, UpdateType
from fluxup.logic.renovate_report import Dep, RepositoryReport
from fluxup.logic.versions import classify_update, parse_version

__all__ = [
    "AppFindings",
    "AppKey",
    "AppTarget",
    "Finding",
    "LookupProblem",
    "build_app_target",
    "findings_for",
    "map_report",
    "normalize_image",
    "repository_matches",
]

AppKey = tuple[str, str]  # (namespace, name)
_TYPES = {t.value: t for t in UpdateType}


@dataclass(frozen=True)
class ImageSlot:
    """An image the versionPolicy names, and the tag it runs now."""

    name: str
    values_path: str
    current: str | None = None


@dataclass(frozen=True)
class AppTarget:
    """What the mapping needs to know about one ManagedApp (from its spec and status)."""

    namespace: str
    name: str
    file: str
    chart_name: str | None = None
    oci_url: str | None = None
    images: tuple[ImageSlot, ...] = ()

    @property
    def key(self) -> AppKey:
        return (self.namespace, self.name)


@dataclass(frozen=True)
class Finding:
    """One newer version for one thing an app runs (a candidate before the policy)."""

    source: UpdateSource
    name: str
    version: str
    type: UpdateType
    values_path: str | None = None
    current_version: str | None = None

    @property
    def slot(self) -> tuple[UpdateSource, str, str | None]:
        return (self.source, self.name, self.values_path)


@dataclass(frozen=True)
class LookupProblem:
    """Renovate could not look a dep up: its datasource/registry failed (soft failure)."""

    slot: tuple[UpdateSource, str, str | None]
    registry: str
    message: str


@dataclass
class AppFindings:
    """Everything the report says about one app."""

    findings: list[Finding] = field(default_factory=list)
    problems: list[LookupProblem] = field(default_factory=list)
    files: set[str] = field(default_factory=set)


def normalize_image(name: str) -> str:
    """``docker.io/library/redis`` and ``redis`` are one image; ``oci://`` is dropped."""
    text = name.strip().removeprefix("oci://").rstrip("/").lower()
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    return text.removeprefix("library/")


def repository_matches(url: str, repository: str) -> bool:
    """Whether the Git URL ``url`` is the repository Renovate calls ``repository``
    (``org/fleet`` for a forge; FluxUp's own runs pass the URL they scanned)."""
    if url == repository:
        return True
    path = url.rstrip("/").removesuffix(".git")
    name = repository.strip("/").removesuffix(".git")
    return bool(name) and name != "local" and path.endswith("/" + name)


def build_app_target(app: ManagedApp) -> AppTarget | None:
    """The mapping view of ``app``; ``None`` until its Git file is discovered."""
    git = app.status.git
    if git is None or not git.file:
        return None
    release = app.status.helm_release
    source = app.status.chart_source
    oci_url = source.url if source and source.kind is ChartSourceKind.OCI_REPOSITORY else None
    current = {i.values_path: i.tag for i in app.status.current_images}
    return AppTarget(
        namespace=app.metadata.namespace or "",
        name=app.metadata.name,
        file=git.file,
        chart_name=release.chart_name if release else None,
        oci_url=oci_url,
        images=tuple(
            ImageSlot(normalize_image(p.name), p.values_path, current.get(p.values_path))
            for p in app.spec.version_policy.images
        ),
    )


def _update_type(dep: Dep, update_type: str | None, version: str) -> UpdateType | None:
    if update_type in _TYPES:
        return _TYPES[update_type]
    current = dep.current_version or dep.current_value
    found = classify_update(current, version) if current else None
    return _TYPES.get(found or "")


def _registry(dep: Dep) -> str:
    if dep.registry_url or dep.registry_urls:
        url = dep.registry_url or dep.registry_urls[0]
        return url.split("://", 1)[-1].split("@", 1)[-1].rstrip("/")  # never userinfo
    head = dep.package_name.split("/", 1)[0]
    return head if ("." in head or ":" in head) and "/" in dep.package_name else dep.datasource


def _slots(dep: Dep, app: AppTarget) -> list[tuple[UpdateSource, str, str | None]]:
    """What of ``app`` the dep is: the chart, image slots, or nothing."""
    package = normalize_image(dep.package_name)
    if dep.manager == "flux" and dep.package_file == app.file and app.chart_name:
        chart = app.chart_name
        if dep.datasource == "helm" and dep.dep_name == chart:
            return [(UpdateSource.CHART, chart, None)]
        if dep.datasource == "docker" and dep.dep_name == chart and package.endswith("/" + chart):
            return [(UpdateSource.CHART, chart, None)]  # chart from an OCI HelmRepository
    if dep.datasource != "docker":
        return []
    if app.oci_url and dep.manager == "flux" and package == normalize_image(app.oci_url):
        return [(UpdateSource.CHART, package.rsplit("/", 1)[-1], None)]
    slots = [s for s in app.images if s.name == package]
    if len(slots) > 1:  # the same image at several value paths: the one at this tag
        exact = [s for s in slots if s.current in (dep.current_value, dep.current_version)]
        slots = exact or slots
    if slots:
        return [(UpdateSource.IMAGE, s.name, s.values_path) for s in slots]
    return [(UpdateSource.IMAGE, package, None)]


class _FileIndex:
    """Which app a repository file belongs to (see the module docstring)."""

    def __init__(self, apps: Iterable[AppTarget]) -> None:
        self.by_file: dict[str, list[AppTarget]] = defaultdict(list)
        self.by_dir: dict[str, list[AppTarget]] = defaultdict(list)
        for app in apps:
            self.by_file[app.file].append(app)
            self.by_dir[posixpath.dirname(app.file)].append(app)

    def owners(self, path: str) -> list[AppTarget]:
        if path in self.by_file:
            return self.by_file[path]
        directory = posixpath.dirname(path)
        while True:
            apps = self.by_dir.get(directory)
            if apps:
                return apps if len(apps) == 1 else []
            if not directory:
                return []
            directory = posixpath.dirname(directory)


def map_report(
    report: RepositoryReport, apps: Sequence[AppTarget]
) -> dict[AppKey, AppFindings]:
    """Findings per app key for every app in ``apps`` (empty findings when none)."""
    index = _FileIndex(apps)
    out: dict[AppKey, AppFindings] = {app.key: AppFindings() for app in apps}
    seen: dict[AppKey, set[tuple[object, ...]]] = defaultdict(set)
    for dep in report.deps:
        owners = index.owners(dep.package_file)
        if not owners:
            continue
        for app in owners:
            out[app.key].files.add(dep.package_file)
        if dep.skip_reason or dep.datasource not in ("helm", "docker"):
            continue
        for app in owners:
            found = out[app.key]
            for slot in _slots(dep, app):
                if dep.warnings and not dep.updates:
                    found.problems.append(
                        LookupProblem(slot, _registry(dep), f"{dep.package_name}: "
                                      f"{dep.warnings[0]}")
                    )
                    continue
                current = dep.current_version or dep.current_value
                for update in dep.updates:
                    kind = _update_type(dep, update.update_type, update.new_version)
                    if kind is None or parse_version(update.new_version) is None:
                        continue  # digest pins, rollbacks, non-semver tags
                    key = (*slot, update.new_version)
                    if key in seen[app.key]:
                        continue  # the same dep seen by several managers or files
                    seen[app.key].add(key)
                    found.findings.append(Finding(slot[0], slot[1], update.new_version, kind,
                                                  slot[2], current))
    return out



def findings_for(mapped: dict[AppKey, AppFindings], app: AppTarget) -> AppFindings | None:
    """The app's findings, or ``None`` when the report does not cover its HelmRelease file
    (then nothing can be concluded, and nothing must be cleared)."""
    found = mapped.get(app.key)
    return found if found is not None and app.file in found.files else None
