"""Release identity: what version of a managed app an object asks for, and what runs.

An identity (DESIGN.md §2) is the chart version (``spec.chart.spec.version`` of a
HelmRelease, or the tag/digest of an OCIRepository), the chart's *source* (chart name and
``sourceRef``, or the ``chartRef`` target; an OCIRepository's ``url`` and
``layerSelector``), the image tags at the value paths the ManagedApp names
(``fluxup.dev/image-paths``) and, beside each ``….tag``, the image's repository, registry
and digest (``extras``). Chart versions are compared without build metadata.

This module computes the *desired* identity from an object's spec and policy
(:func:`determine_desired`), and serializes identities and approvals as the JSON the
operator and the gate exchange in annotations. What *runs* is decided from parsed views
(:func:`fluxup.logic.admitted.determine_deployed`). Used by :mod:`fluxup.logic.admitted`
(the gate's parser) and the operator. Pure: no I/O, never raises on malformed objects.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from enum import StrEnum

from fluxup.api import annotations as ann
from fluxup.logic.gate_values import (
    ValuePath,
    ValuePathError,
    annotations_of,
    get,
    get_mapping,
    get_str,
    parse_value_path,
    scalar_text,
)

__all__ = [
    "Approval",
    "Desired",
    "GatedKind",
    "Identity",
    "IdentityError",
    "ImagePolicy",
    "approval_of",
    "approved_identity",
    "build_approval",
    "build_desired",
    "chart_source",
    "determine_desired",
    "helm_release_source",
    "image_extra_paths",
    "image_paths_of",
    "image_values",
    "is_exact_version",
    "normalize_chart_version",
    "oci_repository_source",
    "parse_approval",
    "parse_bound_identity",
    "parse_identity",
    "parse_image_policy",
    "parse_request_ref",
    "version_text",
]

_EXACT_SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
)


class GatedKind(StrEnum):
    """The Flux kinds whose identity the gate computes."""

    HELM_RELEASE = "HelmRelease"
    OCI_REPOSITORY = "OCIRepository"


class IdentityError(ValueError):
    """An identity annotation is not valid identity JSON."""


def is_exact_version(version: str) -> bool:
    """True for one pinned semver (``12.5.0``, ``v1.2.3-rc.1``, ``=1.2.3``); false for ranges.

    Flux resolves chart versions as Masterminds semver constraints: anything but a full
    ``MAJOR.MINOR.PATCH`` (``12.x``, ``>=12``, ``^1.2``, ``~1.2``, ``*``, ``12.5``, empty)
    matches more than one version and cannot be gated per version.
    """
    text = version.strip()
    if text.startswith("="):
        text = text[1:].strip()
    return bool(_EXACT_SEMVER.match(text))


def normalize_chart_version(version: str) -> str:
    """Canonical text of an exact chart version: no ``=``, no ``v`` prefix, no spaces."""
    text = version.strip()
    if text.startswith("="):
        text = text[1:].strip()
    return text[1:] if text.startswith("v") else text


@functools.lru_cache(maxsize=1024)
def _canonical_path(path: str) -> str:
    """``spec.values.image.tag`` and ``image.tag`` name the same value. Memoized: every
    identity built canonicalizes its paths, and a cluster names few distinct ones."""
    try:
        return str(parse_value_path(path))
    except ValuePathError:
        return path


@dataclass(frozen=True)
class Identity:
    """A release identity. ``chart`` ``None`` means "not determined by this object";
    ``images`` maps value path → tag, ``None`` for a path that is absent (chart default);
    ``source`` names where the chart comes from (``None``: not known); ``extras`` maps
    the repository/registry/digest value paths beside image tags to their values.
    """

    chart: str | None = None
    images: tuple[tuple[str, str | None], ...] = ()
    source: str | None = None
    extras: tuple[tuple[str, str | None], ...] = ()

    def __post_init__(self) -> None:
        images = {_canonical_path(p): t for p, t in self.images}
        object.__setattr__(self, "images", tuple(sorted(images.items())))
        extras = {_canonical_path(p): t for p, t in self.extras}
        object.__setattr__(self, "extras", tuple(sorted(extras.items())))
        if self.chart is not None and not self.chart.startswith("@"):
            object.__setattr__(self, "chart", self.chart.split("+", 1)[0])

    @property
    def is_empty(self) -> bool:
        return self.chart is None and not self.images and self.source is None

    def image(self, path: str) -> tuple[bool, str | None]:
        """(known, tag) of the image at ``path``."""
        for p, tag in self.images:
            if p == path:
                return True, tag
        return False, None

    def satisfies(self, other: Identity) -> bool:
        """True when ``other`` agrees with every component this identity defines."""
        if self.chart is not None and other.chart != self.chart:
            return False
        if self.source is not None and other.source != self.source:
            return False
        theirs_images, theirs_extras = dict(other.images), dict(other.extras)
        for mine, theirs in ((self.images, theirs_images), (self.extras, theirs_extras)):
            for path, value in mine:
                if path not in theirs or theirs[path] != value:
                    return False
        return True

    def to_json(self) -> str:
        """Canonical compact JSON, e.g. ``{"chart":"12.5.0","images":{"image.tag":"1.2"}}``."""
        doc: dict[str, object] = {}
        if self.chart is not None:
            doc["chart"] = self.chart
        if self.images:
            doc["images"] = dict(self.images)
        if self.source is not None:
            doc["source"] = self.source
        if self.extras:
            doc["extras"] = dict(self.extras)
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    def describe(self) -> str:
        """Short human text: ``12.5.0``, ``12.5.0 (image.tag=1.22)``, ``image.tag=1.22``."""
        imgs = ", ".join(f"{p}={t if t is not None else '<unset>'}" for p, t in self.images)
        if self.chart is not None and imgs:
            return f"{self.chart} ({imgs})"
        return self.chart or imgs or "<no version>"


def parse_identity(text: str) -> Identity:
    """Parse identity JSON as written by :meth:`Identity.to_json`; strict about shape."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise IdentityError("identity annotation is not JSON") from None
    if not isinstance(doc, dict) or set(doc) - {"chart", "images", "source", "extras"}:
        raise IdentityError(
            'identity must be a JSON object of "chart", "images", "source" and "extras"'
        )
    chart, source = doc.get("chart"), doc.get("source")
    if not all(v is None or isinstance(v, str) for v in (chart, source)):
        raise IdentityError('identity "chart" and "source" must be strings')
    maps = []
    for key in ("images", "extras"):
        value = doc.get(key, {})
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items()
        ):
            raise IdentityError(f'identity "{key}" must map value paths to text')
        maps.append(tuple(value.items()))
    return Identity(chart=chart, images=maps[0], source=source, extras=maps[1])


#: A HelmRelease's image policy: the value paths of ``fluxup.dev/image-paths`` and the
#: problems reading them.
ImagePolicy = tuple[tuple[ValuePath, ...], tuple[str, ...]]


def image_paths_of(obj: object) -> ImagePolicy:
    """Value paths from ``fluxup.dev/image-paths`` and the problems reading them."""
    return parse_image_policy(annotations_of(obj).get(ann.IMAGE_PATHS))


def parse_image_policy(text: str | None) -> ImagePolicy:
    """The value paths in ``fluxup.dev/image-paths`` text and the problems reading them."""
    if text is None:
        return (), ()
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, list) or not all(isinstance(p, str) for p in doc):
        return (), (f"annotation {ann.IMAGE_PATHS} is not a JSON list of value paths",)
    paths: list[ValuePath] = []
    problems: list[str] = []
    for raw in doc:
        try:
            paths.append(parse_value_path(raw))
        except ValuePathError as exc:
            problems.append(str(exc))
    return tuple(paths), tuple(problems)


@dataclass(frozen=True)
class Desired:
    """The identity an incoming object asks for.

    ``ungated`` explains components that cannot be gated (version ranges, floating
    tags); ``problems`` are policy the gate could not read, which forces a hold.
    """

    identity: Identity
    ungated: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


def version_text(value: object) -> str | None:
    """Version-like field text; YAML may have turned ``12`` or ``1.2`` into numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _ref_text(ref: object, namespace: str) -> str:
    kind = get_str(ref, "kind") or ""
    ref_ns = get_str(ref, "namespace") or namespace
    return f"{kind}/{ref_ns}/{get_str(ref, 'name') or ''}"


def helm_release_source(obj: object) -> str | None:
    """Where a HelmRelease's chart comes from: ``chart:<name>@<Kind>/<ns>/<source>`` or
    ``chartRef:<Kind>/<ns>/<name>``; ``None`` when neither is set."""
    namespace = get_str(obj, "metadata", "namespace") or ""
    chart_ref = get_mapping(obj, "spec", "chartRef")
    if chart_ref is not None:
        return "chartRef:" + _ref_text(chart_ref, namespace)
    chart_spec = get_mapping(obj, "spec", "chart", "spec")
    if chart_spec is None:
        return None
    name = version_text(chart_spec.get("chart")) or ""
    return f"chart:{name}@" + _ref_text(chart_spec.get("sourceRef"), namespace)


def oci_repository_source(obj: object) -> str | None:
    """An OCIRepository's ``url`` and ``layerSelector`` (what it fetches, not which tag)."""
    url = get_str(obj, "spec", "url")
    if url is None:
        return None
    selector = get_mapping(obj, "spec", "layerSelector") or {}
    media, operation = get_str(selector, "mediaType"), get_str(selector, "operation")
    return f"oci:{url.strip()}|{media or ''}|{operation or ''}"


def image_values(
    values: object, paths: tuple[ValuePath, ...]
) -> tuple[tuple[tuple[str, str | None], ...], tuple[tuple[str, str | None], ...]]:
    """(tag values at ``paths``, their repository/registry/digest siblings) in ``values``
    (a HelmRelease's ``spec.values``)."""
    images = tuple((str(p), scalar_text(p.lookup(values))) for p in paths)
    extras = tuple(
        (str(x), scalar_text(x.lookup(values))) for x in image_extra_paths(paths)
    )
    return images, extras


def image_extra_paths(paths: tuple[ValuePath, ...]) -> tuple[ValuePath, ...]:
    """For each ``….tag`` path, the sibling ``repository``, ``registry`` and ``digest``."""
    out: dict[str, ValuePath] = {}
    for path in paths:
        if path.segments and path.segments[-1] == "tag":
            for sibling in ("repository", "registry", "digest"):
                extra = ValuePath((*path.segments[:-1], sibling))
                out[str(extra)] = extra
    taken = {str(p) for p in paths}
    return tuple(v for k, v in sorted(out.items()) if k not in taken)


def _desired_helm_release(obj: object, policy: ImagePolicy, source: str | None) -> Desired:
    ungated: list[str] = []
    chart: str | None = None
    if get_mapping(obj, "spec", "chartRef") is None:
        version = version_text(get(obj, "spec", "chart", "spec", "version"))
        if version is None or not version.strip():
            ungated.append("chart version is not set (Flux installs the latest, '*')")
        elif is_exact_version(version):
            chart = normalize_chart_version(version)
        else:
            ungated.append(f"chart version {version.strip()!r} is a range")
    paths, problems = policy
    images, extras = image_values(get(obj, "spec", "values"), paths)
    if get(obj, "spec", "valuesFrom"):
        # Flux merges spec.values over valuesFrom: a path spec.values leaves unset may be
        # set by a ConfigMap/Secret this object does not show. Only Helm's release record
        # (line 2) sees the merged value, so this object does not determine it.
        unset = [p for p, t in images if t is None]
        if unset:
            ungated.append(f"{', '.join(unset)} may come from valuesFrom")
        images = tuple((p, t) for p, t in images if t is not None)
        extras = tuple((p, t) for p, t in extras if t is not None)
    return Desired(Identity(chart, images, source, extras), tuple(ungated), problems)


def _desired_oci_repository(obj: object, source: str | None) -> Desired:
    ref = get_mapping(obj, "spec", "ref") or {}
    digest, semver, tag = (version_text(ref.get(k)) for k in ("digest", "semver", "tag"))
    if digest and digest.strip():
        return Desired(Identity(chart="@" + digest.strip(), source=source))
    if semver and semver.strip():
        return Desired(Identity(source=source), (f"ref.semver {semver.strip()!r} is a range",))
    if tag and tag.strip() and tag.strip() != "latest":
        return Desired(Identity(chart=tag.strip(), source=source))
    return Desired(
        Identity(source=source), ("tag 'latest' floats (no ref.tag, ref.digest pins nothing)",)
    )


def chart_source(kind: GatedKind, obj: object) -> str | None:
    """Where ``obj``'s chart comes from (:func:`helm_release_source`,
    :func:`oci_repository_source`)."""
    if kind is GatedKind.HELM_RELEASE:
        return helm_release_source(obj)
    return oci_repository_source(obj)


def determine_desired(kind: GatedKind, obj: object) -> Desired:
    """The identity ``obj`` (an incoming HelmRelease or OCIRepository) asks for."""
    policy = image_paths_of(obj) if kind is GatedKind.HELM_RELEASE else ((), ())
    return build_desired(kind, obj, policy, chart_source(kind, obj))


def build_desired(
    kind: GatedKind, obj: object, policy: ImagePolicy, source: str | None
) -> Desired:
    """:func:`determine_desired` with ``obj``'s image policy and chart source already read
    (by the gate's parser)."""
    if kind is GatedKind.HELM_RELEASE:
        return _desired_helm_release(obj, policy, source)
    return _desired_oci_repository(obj, source)


#: The request kinds an approval may name.
REQUEST_KINDS = ("UpgradeRequest", "RollbackRequest")


def parse_request_ref(ref: object) -> tuple[str, str, str] | None:
    """``("UpgradeRequest", ns, name)`` from ``"UpgradeRequest/<ns>/<name>"``; ``None``
    when ``ref`` names no FluxUp request."""
    if not isinstance(ref, str):
        return None
    parts = ref.split("/")
    if len(parts) != 3 or parts[0] not in REQUEST_KINDS or not parts[1] or not parts[2]:
        return None
    return parts[0], parts[1], parts[2]


@dataclass(frozen=True)
class Approval:
    """``fluxup.dev/approved``: the one identity one request (``<Kind>/<ns>/<name>``) may
    release. Written by the operator after that request's snapshots are ReadyToUse and
    removed when the request ends; an approval that names no request approves nothing."""

    identity: Identity
    request: str

    def to_json(self) -> str:
        doc = {"identity": json.loads(self.identity.to_json()), "request": self.request}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def build_approval(identity: Identity | str, request: str) -> str:
    """The ``fluxup.dev/approved`` text binding ``identity`` (or its JSON) to ``request``."""
    if isinstance(identity, str):
        identity = parse_identity(identity)
    return Approval(identity, request).to_json()


def parse_bound_identity(text: str | None, key: str) -> tuple[Identity, object] | None:
    """``{"identity": …, key: …}`` in ``text`` as (identity, value of ``key``); ``None``
    when absent, malformed or carrying other keys. Shared by approvals and bypass bindings."""
    if not text:
        return None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or set(doc) != {"identity", key}:
        return None
    if not isinstance(doc["identity"], dict):
        return None
    try:
        return parse_identity(json.dumps(doc["identity"])), doc[key]
    except IdentityError:
        return None


def parse_approval(text: str | None) -> Approval | None:
    """The approval in ``text``; ``None`` when absent or not bound to a request (a bare
    identity, as written before approvals were bound, approves nothing)."""
    bound = parse_bound_identity(text, "request")
    if bound is None or not isinstance(bound[1], str) or parse_request_ref(bound[1]) is None:
        return None
    return Approval(bound[0], bound[1])


def approval_of(obj: object) -> Approval | None:
    """The operator's ``fluxup.dev/approved`` on ``obj`` (``None`` if absent or unbound)."""
    return parse_approval(annotations_of(obj).get(ann.APPROVED))


def approved_identity(obj: object) -> Identity | None:
    """The identity ``fluxup.dev/approved`` on ``obj`` approves (``None`` if absent/bad
    or not bound to a request)."""
    approval = approval_of(obj)
    return approval.identity if approval is not None else None
