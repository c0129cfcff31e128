"""Typed views of what the admission gate is asked about, parsed once at the boundary.

An AdmissionReview carries arbitrary JSON: the incoming object, the stored one and who
asks. :func:`parse_admitted` reads one HelmRelease or OCIRepository into an
:class:`AdmittedObject` (name, app, ``spec.suspend``, the annotations and label FluxUp
reads, its image policy, what its status says runs); :func:`build_requester` tells who
asks (FluxUp's operator, Flux's kustomize-controller or a person); :func:`parse_admission`
puts them together for one CREATE/UPDATE with the *desired* identity of the incoming
object (its problems and ungated notes included) and :func:`determine_deployed` says what
runs, from those views (DESIGN.md §2, line 1, step 1). :func:`parse_release_secret` reads
a Secret that may be a Helm release record (line 2).

The gate's rules (:mod:`fluxup.logic.gate`, :mod:`fluxup.logic.gate_validation`,
:mod:`fluxup.logic.bypass`) decide from these views only; the raw object is read again
only to address JSON Patch operations (:mod:`fluxup.logic.gate_patch`). Called by
``webhook/`` and by the operator where it reads a gated object. Pure: no I/O; never raises,
whatever the shape of the input — a field of the wrong type reads as absent, and policy
that cannot be read becomes :attr:`Desired.problems <fluxup.logic.identity.Desired>`,
which the rules answer with a hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from fluxup.api import annotations as ann
from fluxup.logic.gate_values import (
    ValuePath,
    annotations_of,
    get,
    get_str,
    labels_of,
)
from fluxup.logic.identity import (
    Approval,
    Desired,
    GatedKind,
    Identity,
    IdentityError,
    ImagePolicy,
    build_desired,
    chart_source,
    image_values,
    normalize_chart_version,
    parse_approval,
    parse_identity,
    parse_image_policy,
    version_text,
)
from fluxup.logic.release_record import RECORD_OWNER

__all__ = [
    "FLUX_APPLIER",
    "Admission",
    "AdmittedObject",
    "Asker",
    "Deployed",
    "ReleaseSecret",
    "Requester",
    "build_requester",
    "determine_deployed",
    "is_flux_apply",
    "oci_revision_charts",
    "parse_admission",
    "parse_admitted",
    "parse_release_secret",
]

#: The field manager and ServiceAccount name of Flux's kustomize-controller, which applies
#: HelmReleases and OCIRepositories from Git.
FLUX_APPLIER = "kustomize-controller"


@dataclass(frozen=True, slots=True)
class AdmittedObject:
    """One HelmRelease or OCIRepository as the gate reads it.

    ``name``/``namespace`` are ``""`` when absent; ``app`` is the ManagedApp name for
    messages (the ``fluxup.dev/managed-app`` label, else the object's name); ``managed``:
    it carries that label. ``suspend`` is ``spec.suspend`` when it is a boolean. The
    annotation fields hold the text of ``fluxup.dev/held``, ``held-since``, ``bypass``,
    ``bypassed``, ``upgrade-request``, ``approved`` and ``released`` (the last two are
    decoded by :attr:`approval` and :attr:`released` when a rule reads them: most
    requests never need them); ``operator_notes`` are the operator-only annotations
    present. ``policy`` is a HelmRelease's image policy: the value paths of
    ``fluxup.dev/image-paths`` and the problems reading them (none for an OCIRepository).
    ``status_charts`` are the chart versions its status says run (empty for an incoming
    object: its status is never trusted), ``source`` where its chart comes from and
    ``values`` its ``spec.values`` (user data: never put into messages).
    """

    kind: GatedKind
    name: str
    namespace: str
    app: str
    managed: bool
    suspend: bool | None
    held: str | None
    held_since: str | None
    approved_text: str | None
    released_text: str | None
    bypass: str | None
    bypassed: str | None
    upgrade_request: str | None
    operator_notes: Mapping[str, str]
    policy: ImagePolicy
    status_charts: tuple[str, ...]
    source: str | None
    values: object = field(repr=False, compare=False)

    @property
    def approval(self) -> Approval | None:
        """``fluxup.dev/approved``; ``None`` when absent, malformed or bound to no request
        (it then approves nothing)."""
        return parse_approval(self.approved_text)

    @property
    def image_paths(self) -> tuple[ValuePath, ...]:
        return self.policy[0]

    @property
    def released(self) -> Identity | None:
        """``fluxup.dev/released``; ``None`` when absent or malformed (records nothing)."""
        return _identity_or_none(self.released_text)

    def describe(self) -> str:
        """``HelmRelease my-ns/my-app`` for messages."""
        name = self.name or "<unnamed>"
        kind = self.kind.value
        return f"{kind} {self.namespace}/{name}" if self.namespace else f"{kind} {name}"


def _identity_or_none(text: str | None) -> Identity | None:
    if text is None:
        return None
    try:
        return parse_identity(text)
    except IdentityError:
        return None


def _helm_status_charts(obj: object) -> tuple[str, ...]:
    """``status.history[0].chartVersion`` (v2, v2beta2), else ``lastAppliedRevision``."""
    history = get(obj, "status", "history")
    if isinstance(history, list) and history and isinstance(history[0], Mapping):
        version = version_text(history[0].get("chartVersion"))
        if version and version.strip():
            return (normalize_chart_version(version),)
    revision = version_text(get(obj, "status", "lastAppliedRevision"))
    if revision and revision.strip():
        return (normalize_chart_version(revision),)
    return ()


def oci_revision_charts(obj: object) -> tuple[str, ...]:
    """The tag and ``@digest`` of the artifact source-controller last fetched for an
    OCIRepository (``status.artifact.revision`` in any of its formats), or ``()``."""
    revision = version_text(get(obj, "status", "artifact", "revision"))
    if not revision or not revision.strip():
        return ()
    revision = revision.strip()
    if "@" in revision:
        tag, digest = revision.rsplit("@", 1)
        return tuple(c for c in (tag, "@" + digest) if c and c != "@")
    if revision.startswith(("sha256:", "sha384:", "sha512:")):
        return ("@" + revision,)
    if "/" in revision:  # pre-2.0 format "<tag>/<hex digest>"
        tag, digest = revision.rsplit("/", 1)
        return tuple(c for c in (tag, "@sha256:" + digest) if c and c != "@sha256:")
    return (revision,)


def parse_admitted(kind: GatedKind, obj: object, *, trust_status: bool = True) -> AdmittedObject:
    """Read ``obj`` (any JSON value) as a ``kind``; never raises. ``trust_status=False``
    (an incoming object, whose status is whatever the client sent) leaves
    ``status_charts`` empty."""
    notes, labels = annotations_of(obj), labels_of(obj)
    name = get_str(obj, "metadata", "name") or ""
    suspend = get(obj, "spec", "suspend")
    helm = kind is GatedKind.HELM_RELEASE
    return AdmittedObject(
        kind=kind,
        name=name,
        namespace=get_str(obj, "metadata", "namespace") or "",
        app=labels.get(ann.MANAGED_APP_LABEL, "").strip() or name or "<unnamed>",
        managed=ann.MANAGED_APP_LABEL in labels,
        suspend=suspend if isinstance(suspend, bool) else None,
        held=notes.get(ann.HELD),
        held_since=notes.get(ann.HELD_SINCE),
        approved_text=notes.get(ann.APPROVED),
        released_text=notes.get(ann.RELEASED),
        bypass=notes.get(ann.BYPASS),
        bypassed=notes.get(ann.BYPASSED),
        upgrade_request=notes.get(ann.UPGRADE_REQUEST),
        operator_notes={k: notes[k] for k in ann.OPERATOR_ONLY_ANNOTATIONS if k in notes},
        policy=parse_image_policy(notes.get(ann.IMAGE_PATHS)) if helm else ((), ()),
        status_charts=(
            () if not trust_status
            else _helm_status_charts(obj) if helm else oci_revision_charts(obj)
        ),
        source=chart_source(kind, obj),
        values=get(obj, "spec", "values"),
    )


class Asker(StrEnum):
    """Who sends a request, as the rules tell them apart (DESIGN.md §2, rules 4 and 5)."""

    OPERATOR = "operator"
    FLUX = "flux"
    PERSON = "person"


def is_flux_apply(username: str, options: object) -> bool:
    """The request is an apply by Flux's kustomize-controller (its ServiceAccount in any
    namespace, or its field manager). Taking a request for Flux's only ever makes the gate
    keep the object held instead of denying the change, so a look-alike gains nothing."""
    parts = username.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"] and parts[3] == FLUX_APPLIER:
        return True
    return get_str(options, "fieldManager") == FLUX_APPLIER


@dataclass(frozen=True)
class Requester:
    """Who asks: ``username`` (``""`` when the request names none), the operator's
    username (for messages) and whether the request is Flux's apply (:func:`is_flux_apply`).
    """

    username: str
    operator_username: str
    flux_apply: bool

    @property
    def asker(self) -> Asker:
        if self.username == self.operator_username:
            return Asker.OPERATOR
        return Asker.FLUX if self.flux_apply else Asker.PERSON


def build_requester(username: str, operator_username: str, options: object = None) -> Requester:
    """The requester of a request by ``username`` with ``options`` (``PatchOptions`` etc.)."""
    return Requester(username, operator_username, is_flux_apply(username, options))


@dataclass(frozen=True)
class Admission:
    """One CREATE/UPDATE of a gated object: the incoming object, the stored one
    (``oldObject``; ``None`` on CREATE, or when an UPDATE lacks it), who asks, and the
    identity the incoming object asks for (``desired``: DESIGN.md §2, line 1, step 1)."""

    operation: Literal["CREATE", "UPDATE"]
    incoming: AdmittedObject
    stored: AdmittedObject | None
    requester: Requester
    desired: Desired
    dry_run: bool = False

    @property
    def kind(self) -> GatedKind:
        return self.incoming.kind


def parse_admission(
    kind: GatedKind,
    incoming: object,
    stored: object | None,
    operation: Literal["CREATE", "UPDATE"],
    requester: Requester,
    dry_run: bool = False,
) -> Admission:
    """The views of one request; ``stored`` is the AdmissionReview's ``oldObject``."""
    view = parse_admitted(kind, incoming, trust_status=False)
    return Admission(
        operation,
        view,
        parse_admitted(kind, stored) if stored is not None else None,
        requester,
        build_desired(kind, incoming, view.policy, view.source),
        dry_run,
    )


@dataclass(frozen=True)
class Deployed:
    """What runs now. ``candidates``: identities any of which describe it (an OCI
    revision names a tag and a digest). ``nothing``: nothing was ever released.
    """

    candidates: tuple[Identity, ...] = ()
    nothing: bool = False
    sources: tuple[str, ...] = field(default=())

    def satisfied_by(self, desired: Identity) -> bool:
        return any(desired.satisfies(c) for c in self.candidates)


def determine_deployed(stored: AdmittedObject | None, incoming: AdmittedObject) -> Deployed:
    """The identity running now.

    ``stored`` is the object as persisted (``oldObject`` on UPDATE, ``None`` on CREATE);
    its status is authoritative. On CREATE only the incoming ``released`` annotation
    counts (the validating webhook lets only the operator write it) and no status is
    trusted, so a new object with neither has ``nothing`` deployed: a first install, which
    has no data to protect. Image tags come from ``released``; while the stored object is
    not held, its own values fill in image paths ``released`` lacks (at rest, Flux has
    reconciled the stored spec; a held object's spec is not running).
    """
    released = (stored if stored is not None else incoming).released
    status_charts = stored.status_charts if stored is not None else ()
    sources: list[str] = []
    if status_charts:
        sources.append("status")
    if released is not None:
        sources.append(ann.RELEASED)
    if not status_charts and released is None:
        return Deployed(nothing=True)

    images = dict(released.images if released else ())
    extras = dict(released.extras if released else ())
    chart_source = released.source if released else None
    if stored is not None and stored.held is None:
        # Every path of the policy in force counts, also one the incoming object leaves to
        # valuesFrom: its repository/registry/digest siblings may still be in spec.values.
        spec_images, spec_extras = image_values(stored.values, incoming.image_paths)
        for path, value in spec_images:
            images.setdefault(path, value)
        for path, value in spec_extras:
            extras.setdefault(path, value)
        if chart_source is None:
            chart_source = stored.source
        sources.append("stored spec")
    charts = status_charts or ((released.chart,) if released and released.chart else (None,))
    candidates = tuple(
        Identity(chart, tuple(images.items()), chart_source, tuple(extras.items()))
        for chart in charts
    )
    return Deployed(candidates, sources=tuple(sources))


@dataclass(frozen=True)
class ReleaseSecret:
    """A Secret created in a namespace line 2 watches: whether Helm owns it
    (``owner=helm``), the release it records (label ``name``), its namespace (the
    request's, else the object's) and ``data.release`` (the record; never log it)."""

    helm_owned: bool
    release: str
    namespace: str
    record: str | None = field(repr=False)


def parse_release_secret(obj: object, request_namespace: str) -> ReleaseSecret:
    """Read a Secret (any JSON value) created in ``request_namespace``."""
    labels = labels_of(obj)
    record = get(obj, "data", "release")
    return ReleaseSecret(
        helm_owned=labels.get("owner") == RECORD_OWNER,
        release=labels.get("name") or "",
        namespace=request_namespace or get_str(obj, "metadata", "namespace") or "",
        record=record if isinstance(record, str) else None,
    )
