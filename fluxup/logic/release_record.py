"""Line 2 of the gate (DESIGN.md §2): Helm's release record and what it says will run.

Helm stores each release revision as a Secret ``sh.helm.release.v1.<release>.v<N>``
(labels ``owner=helm``, ``name``, ``status``, ``version``) and writes it *before* it
applies any object. Its ``data.release`` is base64 of the gzipped JSON release: chart
metadata, the chart's default values and the user-supplied values (``config``), so the
merged values show every source of values — ``spec.values``, ``valuesFrom`` ConfigMaps
and Secrets, a chart resolved from a semver range.

This module decodes such a record (bounded: a record larger than :data:`MAX_RELEASE_BYTES`
decompressed is refused), computes its :class:`ReleaseIdentity` (chart name, chart version
without build metadata, and the image values at the ManagedApp's paths) and decides, as a
pure function of the record and the ManagedApps' :class:`ReleaseGate` views, whether the
revision may be written (:func:`decide_release_record`). A record's values can hold
secrets: nothing here puts values into a message except the image values the ManagedApp
names. Used by ``webhook/`` (the decision) and the operator (deployed identity, approvals,
reading a denial back from helm-controller's status). Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from fluxup.api import annotations as ann
from fluxup.logic.gate_values import (
    ValuePath,
    ValuePathError,
    annotations_of,
    get,
    get_str,
    labels_of,
    parse_value_path,
    scalar_text,
)
from fluxup.logic.identity import parse_request_ref

__all__ = [
    "HOLD_MARKER",
    "MAX_RELEASE_BYTES",
    "RECORD_OWNER",
    "DecodedRecord",
    "RecordVerdict",
    "ReleaseGate",
    "ReleaseIdentity",
    "ReleaseRecordError",
    "build_approval_annotation",
    "build_gate_annotation",
    "build_release_identity",
    "build_release_key",
    "coalesce_values",
    "decide_release_record",
    "decode_release",
    "identity_paths",
    "operator_only_app_change",
    "parse_hold_marker",
    "parse_paths",
    "parse_release_gate",
    "parse_release_identity",
    "release_key_of",
    "release_secret_name",
    "strip_build_metadata",
]

#: Largest decompressed release JSON accepted (Helm itself caps a Secret at 1 MiB
#: compressed; this bounds a hostile gzip bomb).
MAX_RELEASE_BYTES = 64 * 1024 * 1024

#: ``owner`` label value of Helm's release records.
RECORD_OWNER = "helm"

#: Marker in the denial message that tells the operator which identity line 2 held.
HOLD_MARKER = "fluxup-hold="

#: Sibling keys of an image tag value that are part of the image's identity.
_IMAGE_SIBLINGS = ("repository", "registry", "digest")


class ReleaseRecordError(ValueError):
    """A Helm release record cannot be decoded; the message says why (never its values)."""


def strip_build_metadata(version: str) -> str:
    """``1.0.0+abc`` → ``1.0.0``: build metadata does not make another version (semver §10)."""
    text = version.strip()
    if text.startswith("="):
        text = text[1:].strip()
    if text.startswith("v"):
        text = text[1:]
    return text.split("+", 1)[0]


def identity_paths(paths: Iterable[ValuePath]) -> tuple[ValuePath, ...]:
    """The image tag paths plus, for ``….tag``, the sibling repository/registry/digest.

    A ManagedApp names where an image's tag lives (``image.tag``); a change of
    ``image.repository`` or ``image.digest`` beside it runs a different image too.
    """
    out: dict[str, ValuePath] = {}
    for path in paths:
        out[str(path)] = path
        last = path.segments[-1] if path.segments else None
        if last == "tag":
            for sibling in _IMAGE_SIBLINGS:
                extra = ValuePath((*path.segments[:-1], sibling))
                out.setdefault(str(extra), extra)
    return tuple(out[k] for k in sorted(out))


@dataclass(frozen=True)
class ReleaseIdentity:
    """What a Helm revision runs: chart name, version (no build metadata), image values."""

    chart: str | None
    version: str | None
    images: tuple[tuple[str, str | None], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", tuple(sorted(dict(self.images).items())))
        if self.version is not None:
            object.__setattr__(self, "version", strip_build_metadata(self.version))

    def with_target(
        self, version: str | None, images: Mapping[str, str | None]
    ) -> ReleaseIdentity:
        """This identity with the chart version and some image values replaced."""
        merged = dict(self.images)
        merged.update(images)
        return ReleaseIdentity(self.chart, version or self.version, tuple(merged.items()))

    def to_json(self) -> str:
        doc: dict[str, object] = {"chart": self.chart, "version": self.version}
        if self.images:
            doc["images"] = dict(self.images)
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    def describe(self) -> str:
        imgs = ", ".join(f"{p}={v if v is not None else '<unset>'}" for p, v in self.images)
        head = f"{self.chart or '<chart>'} {self.version or '<version>'}"
        return f"{head} ({imgs})" if imgs else head


def parse_release_identity(text: str) -> ReleaseIdentity:
    """Parse :meth:`ReleaseIdentity.to_json` output; strict about shape."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise ReleaseRecordError("release identity is not JSON") from None
    return _identity_from_doc(doc)


def _identity_from_doc(doc: object) -> ReleaseIdentity:
    if not isinstance(doc, Mapping) or set(doc) - {"chart", "version", "images"}:
        raise ReleaseRecordError('release identity must be an object of "chart", '
                                 '"version" and "images"')
    chart, version, images = doc.get("chart"), doc.get("version"), doc.get("images", {})
    if not all(v is None or isinstance(v, str) for v in (chart, version)):
        raise ReleaseRecordError('release identity "chart" and "version" must be strings')
    if not isinstance(images, Mapping) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in images.items()
    ):
        raise ReleaseRecordError('release identity "images" must map value paths to text')
    return ReleaseIdentity(chart, version, tuple(images.items()))


def coalesce_values(defaults: object, overrides: object) -> object:
    """Helm's value coalescing: ``overrides`` win, maps merge deeply, ``null`` deletes."""
    if not isinstance(overrides, Mapping):
        return overrides if overrides is not None else defaults
    if not isinstance(defaults, Mapping):
        return {k: v for k, v in overrides.items() if v is not None}
    merged: dict[str, object] = dict(defaults)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = coalesce_values(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class DecodedRecord:
    """The parts of a release record the gate reads. ``values`` are the merged values:
    keep them in memory only, never log or store them."""

    name: str
    namespace: str
    revision: int
    chart: str | None
    version: str | None
    values: Mapping[str, object] = field(repr=False)

    def identity(self, paths: Sequence[ValuePath]) -> ReleaseIdentity:
        return build_release_identity(self.chart, self.version, self.values, paths)


def build_release_identity(
    chart: str | None, version: str | None, values: object, paths: Sequence[ValuePath]
) -> ReleaseIdentity:
    """The identity of a release of ``chart`` ``version`` with merged ``values``."""
    images = tuple((str(p), scalar_text(p.lookup(values))) for p in identity_paths(paths))
    return ReleaseIdentity(chart, version, images)


def _gunzip_bounded(data: bytes) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_RELEASE_BYTES + 1)
    except zlib.error:
        raise ReleaseRecordError("release record is not valid gzip") from None
    if len(out) > MAX_RELEASE_BYTES or inflater.unconsumed_tail:
        raise ReleaseRecordError(
            f"release record decompresses to more than {MAX_RELEASE_BYTES} bytes"
        )
    return out


def decode_release(secret_data_release: str) -> DecodedRecord:
    """Decode a Secret's ``data.release`` as it appears in JSON (base64 of Helm's
    base64-of-gzip encoding). Raises :class:`ReleaseRecordError` with a reason."""
    try:
        helm_text = base64.b64decode(secret_data_release, validate=True)
        payload = base64.b64decode(helm_text, validate=True)
    except (binascii.Error, ValueError):
        raise ReleaseRecordError("release record is not base64") from None
    if payload[:2] == b"\x1f\x8b":
        payload = _gunzip_bounded(payload)
    elif len(payload) > MAX_RELEASE_BYTES:
        raise ReleaseRecordError(f"release record is larger than {MAX_RELEASE_BYTES} bytes")
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError):
        raise ReleaseRecordError("release record is not JSON") from None
    if not isinstance(doc, Mapping):
        raise ReleaseRecordError("release record is not a JSON object")
    name, namespace = get_str(doc, "name"), get_str(doc, "namespace")
    revision = doc.get("version")
    if not name or not namespace or not isinstance(revision, int):
        raise ReleaseRecordError("release record lacks its name, namespace or version")
    chart_values = get(doc, "chart", "values")
    values = coalesce_values(chart_values if chart_values is not None else {}, doc.get("config"))
    return DecodedRecord(
        name=name,
        namespace=namespace,
        revision=revision,
        chart=get_str(doc, "chart", "metadata", "name"),
        version=get_str(doc, "chart", "metadata", "version"),
        values=values if isinstance(values, Mapping) else {},
    )


def release_secret_name(release: str, revision: int) -> str:
    """``sh.helm.release.v1.<release>.v<revision>``: Helm's Secret storage naming."""
    return f"sh.helm.release.v1.{release}.v{revision}"


def build_release_key(storage_namespace: str, release: str) -> str:
    """Label value that finds the ManagedApp of a release: a hash of namespace/name."""
    return hashlib.sha256(f"{storage_namespace}/{release}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class ReleaseGate:
    """One ManagedApp's line-2 view: which release it protects, the image paths, what
    runs (``deployed``; empty when nothing was ever released) and what one request may
    install (``approved``/``approved_for``). Written by the operator only."""

    app: str
    storage_namespace: str
    release: str
    paths: tuple[ValuePath, ...] = ()
    deployed: tuple[ReleaseIdentity, ...] = ()
    approved: ReleaseIdentity | None = None
    approved_for: str | None = None

    def covers(self, namespace: str, release: str) -> bool:
        return self.storage_namespace == namespace and self.release == release


@dataclass(frozen=True)
class RecordVerdict:
    """Line 2's answer; ``held`` is the identity denied (for the operator's hold)."""

    allowed: bool
    reason: str
    message: str = ""
    held: ReleaseIdentity | None = None


def decide_release_record(
    record: DecodedRecord | ReleaseRecordError, gates: Sequence[ReleaseGate]
) -> RecordVerdict:
    """Allow a new revision of a managed release only at a deployed or approved identity.

    ``gates`` are the ManagedApps whose recorded release is this record's (found by
    :func:`build_release_key`); none → not managed. Nothing deployed yet → a first
    install, which has no data to protect. An undecodable record of a managed release is
    denied: the gate cannot see what it would run.
    """
    if not gates:
        return RecordVerdict(True, "NotManaged")
    apps = ", ".join(sorted(g.app for g in gates))
    if isinstance(record, ReleaseRecordError):
        return RecordVerdict(
            False, "RecordUnreadable",
            f"FluxUp cannot read this Helm release record of ManagedApp {apps} ({record}); "
            "it lets no unreadable revision of a managed release through",
        )
    mine = [g for g in gates if g.covers(record.namespace, record.name)] or list(gates)
    for gate in mine:
        identity = record.identity(gate.paths)
        if not gate.deployed or identity in gate.deployed:
            continue
        if gate.approved is not None and identity == gate.approved:
            continue
        return RecordVerdict(
            False, "NotApproved",
            f"FluxUp holds Helm release {record.namespace}/{record.name} at "
            f"{identity.describe()} (ManagedApp {gate.app}) until pre-upgrade snapshots "
            "are ready; FluxUp snapshots the volumes and asks helm-controller to retry. "
            f"{HOLD_MARKER}{identity.to_json()}",
            held=identity,
        )
    return RecordVerdict(True, "Approved")


def parse_hold_marker(message: str) -> ReleaseIdentity | None:
    """The identity line 2 denied, read back from a message that quotes the denial
    (helm-controller's condition message); ``None`` when there is none."""
    start = message.rfind(HOLD_MARKER)
    if start < 0:
        return None
    text = message[start + len(HOLD_MARKER):]
    try:
        doc, _ = json.JSONDecoder().raw_decode(text)
        return _identity_from_doc(doc)
    except (ValueError, ReleaseRecordError):
        return None


def parse_paths(raw: Iterable[object]) -> tuple[ValuePath, ...]:
    """Value paths from text, skipping unparseable ones (the CRD webhook rejects them)."""
    out = []
    for text in raw:
        if isinstance(text, str):
            try:
                out.append(parse_value_path(text))
            except ValuePathError:
                continue
    return tuple(out)


def build_gate_annotation(
    storage_namespace: str,
    release: str,
    paths: Sequence[ValuePath],
    deployed: Sequence[ReleaseIdentity],
) -> str:
    """The ``fluxup.dev/release-gate`` annotation of a ManagedApp (canonical JSON)."""
    doc = {
        "namespace": storage_namespace,
        "release": release,
        "paths": [str(p) for p in paths],
        "deployed": [json.loads(d.to_json()) for d in deployed],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def build_approval_annotation(identity: ReleaseIdentity, request: str) -> str:
    """The ``fluxup.dev/release-approved`` annotation: one identity for one request."""
    doc = {"identity": json.loads(identity.to_json()), "request": request}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _approval(notes: Mapping[str, str]) -> tuple[ReleaseIdentity | None, str | None]:
    text = notes.get(ann.RELEASE_APPROVED)
    if not text:
        return None, None
    try:
        doc = json.loads(text)
        request = doc.get("request") if isinstance(doc, Mapping) else None
        identity = _identity_from_doc(doc.get("identity")) if isinstance(doc, Mapping) else None
    except (ValueError, ReleaseRecordError):
        return None, None
    if parse_request_ref(request) is None:
        return None, None  # an approval names the request it is for, or approves nothing
    return identity, str(request)


def parse_release_gate(app: object) -> ReleaseGate | None:
    """The line-2 view of a ManagedApp object, from the operator's annotations.

    ``None`` when the operator has not recorded the app's release yet. An unreadable
    ``deployed`` list reads as nothing deployed only if it is absent; malformed entries
    make the app's gate deny everything (no deployed identity matches ``<unreadable>``).
    """
    notes = annotations_of(app)
    text = notes.get(ann.RELEASE_GATE)
    if not text:
        return None
    name = f"{get_str(app, 'metadata', 'namespace') or ''}/{get_str(app, 'metadata', 'name') or ''}"
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, Mapping):
        return ReleaseGate(name, "", "", deployed=(_UNREADABLE,))
    raw_paths = doc.get("paths")
    raw_deployed = doc.get("deployed")
    deployed: list[ReleaseIdentity] = []
    for item in raw_deployed if isinstance(raw_deployed, list) else []:
        try:
            deployed.append(_identity_from_doc(item))
        except ReleaseRecordError:
            deployed.append(_UNREADABLE)
    approved, approved_for = _approval(notes)
    return ReleaseGate(
        app=name,
        storage_namespace=str(doc.get("namespace") or ""),
        release=str(doc.get("release") or ""),
        paths=parse_paths(raw_paths if isinstance(raw_paths, list) else []),
        deployed=tuple(deployed),
        approved=approved,
        approved_for=approved_for,
    )


def release_key_of(app: object) -> str | None:
    """The ``fluxup.dev/release-key`` label of a ManagedApp object."""
    return labels_of(app).get(ann.RELEASE_KEY_LABEL)


_UNREADABLE = ReleaseIdentity("<unreadable>", "<unreadable>")


def operator_only_app_change(incoming: object, stored: object | None) -> str | None:
    """The line-2 metadata of a ManagedApp a request would change, if any.

    The release key, the recorded release gate and the approval decide what line 2 lets
    through, so only the operator may write them; the webhook denies anyone else."""
    new, old = annotations_of(incoming), annotations_of(stored) if stored is not None else {}
    for name in ann.OPERATOR_ONLY_APP_ANNOTATIONS:
        if new.get(name) != old.get(name):
            return f"annotation {name}"
    new_key = labels_of(incoming).get(ann.RELEASE_KEY_LABEL)
    old_key = labels_of(stored).get(ann.RELEASE_KEY_LABEL) if stored is not None else None
    if new_key != old_key:
        return f"label {ann.RELEASE_KEY_LABEL}"
    return None
