"""Keep line 2 of the gate informed, and turn its denials into ordinary holds.

Called by the ManagedApp reconciler on every pass (events and timer, so a missed event
never strands a hold) and by the UpgradeRequest actions when they approve or finish.

* :func:`ensure_release_gate` records on the ManagedApp which Helm release it protects
  (label ``fluxup.dev/release-key``, annotation ``fluxup.dev/release-gate`` with the
  storage namespace, release name, image paths and the identity of the *deployed*
  revision, read from Helm's own record, never from the HelmRelease status), and labels
  the storage namespace so line 2's webhook configuration selects it.
* :func:`ensure_request_for_record_hold` reads a line-2 denial back from
  helm-controller's conditions and makes sure an UpgradeRequest (``origin: git``)
  handles it: snapshots, approval, then a retry — the same flow as a line-1 hold.
* :func:`approve_release` / :func:`end_release_approval` write and clear the one
  approval line 2 honours; it names the request it was given for.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from fluxup.adapters.kube import Obj, R
from fluxup.api import annotations as ann
from fluxup.api.constants import API_VERSION, UPGRADE_REQUEST
from fluxup.api.managedapp import ManagedApp
from fluxup.api.upgraderequest import TERMINAL_UPGRADE_PHASES
from fluxup.errors import KubeConflict, KubeNotFound
from fluxup.logic.release_record import (
    RECORD_OWNER,
    ReleaseGate,
    ReleaseIdentity,
    ReleaseRecordError,
    build_approval_annotation,
    build_gate_annotation,
    build_release_key,
    decode_release,
    parse_hold_marker,
    parse_paths,
    parse_release_gate,
    parse_release_identity,
    release_secret_name,
)
from fluxup.logic.snapshots import label_safe
from fluxup.reconcile.context import Context

__all__ = [
    "HELD_AT",
    "HELD_AT_RELEASE_RECORD",
    "RELEASE_HELD",
    "approve_release",
    "build_release_approval",
    "determine_release_location",
    "end_release_approval",
    "ensure_release_gate",
    "ensure_request_for_record_hold",
    "record_hold_of",
]

log = logging.getLogger(__name__)

#: Annotation on an UpgradeRequest: which line of the gate holds what it releases.
HELD_AT = "fluxup.dev/held-at"
HELD_AT_RELEASE_RECORD = "release-record"
#: Annotation on an UpgradeRequest created for a line-2 hold: the held release identity.
RELEASE_HELD = "fluxup.dev/release-held"

_RECORDS = "gated"


def determine_release_location(hr: Obj) -> tuple[str, str]:
    """(storage namespace, Helm release name) of a HelmRelease, as helm-controller uses.

    helm-controller records both in status (``storageNamespace``, ``history[].name``);
    before the first install they follow the spec: ``releaseName``, else
    ``[<targetNamespace>-]<name>``; ``storageNamespace``, else the object's namespace.
    """
    meta, spec, status = hr.get("metadata") or {}, hr.get("spec") or {}, hr.get("status") or {}
    history = status.get("history") or []
    storage = status.get("storageNamespace") or spec.get("storageNamespace") or meta["namespace"]
    name = history[0].get("name") if history and isinstance(history[0], dict) else None
    if not name:
        name = spec.get("releaseName") or (
            f"{spec['targetNamespace']}-{meta['name']}" if spec.get("targetNamespace")
            else meta["name"]
        )
    return str(storage), str(name)


def _app_paths(app: ManagedApp) -> tuple[Any, ...]:
    return parse_paths(i.values_path for i in app.spec.version_policy.images)


async def _deployed_identity(
    ctx: Context, hr: Obj, storage: str, release: str, app: ManagedApp
) -> ReleaseIdentity | None:
    """The identity of the revision Helm marks deployed, from its own record."""
    for entry in (hr.get("status") or {}).get("history") or []:
        revision = entry.get("version") if isinstance(entry, dict) else None
        if not isinstance(revision, int):
            continue
        try:
            secret = await ctx.kube.get(R.SECRET, storage, release_secret_name(release, revision))
        except KubeNotFound:
            continue
        labels = (secret.get("metadata") or {}).get("labels") or {}
        if labels.get("owner") != RECORD_OWNER or labels.get("status") != "deployed":
            continue
        raw = (secret.get("data") or {}).get("release")
        try:
            record = decode_release(str(raw))
        except ReleaseRecordError as exc:
            log.warning("Helm record %s/%s v%s unreadable: %s", storage, release, revision, exc)
            return None
        return record.identity(_app_paths(app))
    return None


async def ensure_release_gate(ctx: Context, app_obj: Obj, app: ManagedApp, hr: Obj) -> bool:
    """Record the app's release, paths and deployed identity for line 2 (idempotent);
    True once recorded (line 2 covers the app from then on)."""
    storage, release = determine_release_location(hr)
    paths = _app_paths(app)
    known = parse_release_gate(app_obj)
    deployed = await _deployed_identity(ctx, hr, storage, release, app)
    if deployed is not None:
        kept: tuple[ReleaseIdentity, ...] = (deployed,)
    elif known is not None and known.covers(storage, release):
        kept = known.deployed  # e.g. a re-created HelmRelease: its status is empty
    else:
        kept = ()
    text = build_gate_annotation(storage, release, paths, kept)
    key = build_release_key(storage, release)
    meta = app_obj.get("metadata") or {}
    patch: dict[str, Any] = {}
    if ((meta.get("labels") or {}).get(ann.RELEASE_KEY_LABEL)) != key:
        patch.setdefault("metadata", {})["labels"] = {ann.RELEASE_KEY_LABEL: key}
    if ((meta.get("annotations") or {}).get(ann.RELEASE_GATE)) != text:
        patch.setdefault("metadata", {})["annotations"] = {ann.RELEASE_GATE: text}
    if patch:
        await ctx.kube.merge_patch(R.MANAGEDAPP, meta["namespace"], meta["name"], patch)
    ns = await ctx.kube.get(R.NAMESPACE, None, storage)
    if ((ns.get("metadata") or {}).get("labels") or {}).get(
        ann.RELEASE_RECORDS_NAMESPACE_LABEL
    ) != _RECORDS:
        await ctx.kube.merge_patch(
            R.NAMESPACE, None, storage,
            {"metadata": {"labels": {ann.RELEASE_RECORDS_NAMESPACE_LABEL: _RECORDS}}},
        )
    return True


def record_hold_of(hr: Obj) -> ReleaseIdentity | None:
    """The identity line 2 denied, if helm-controller's conditions report a denial."""
    for cond in (hr.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Ready", "Released") and cond.get("status") == "False":
            held = parse_hold_marker(str(cond.get("message") or ""))
            if held is not None:
                return held
    return None


def _request_name(app: str, held: ReleaseIdentity) -> str:
    digest = hashlib.sha256(held.to_json().encode()).hexdigest()[:10]
    return f"{app[:40].rstrip('-.')}-rec-{digest}"


def _targets(request: Obj, held: ReleaseIdentity) -> bool:
    notes = (request.get("metadata") or {}).get("annotations") or {}
    if notes.get(RELEASE_HELD) == held.to_json():
        return True
    spec = request.get("spec") or {}
    version = str(spec.get("targetVersion") or "").lstrip("v=")
    if version and version != (held.version or ""):
        return False
    images = {i.get("valuesPath"): i.get("tag") for i in spec.get("targetImages") or []}
    return bool(version or images) and all(
        dict(held.images).get(path) == tag for path, tag in images.items()
    )


async def ensure_request_for_record_hold(
    ctx: Context, app_obj: Obj, app: ManagedApp, hr: Obj
) -> str | None:
    """Make sure a request handles line 2's current denial; return its name."""
    held = record_hold_of(hr)
    gate = parse_release_gate(app_obj)
    if held is None or gate is None or app.spec.suspend:
        return None
    if held in gate.deployed or held == gate.approved:
        return None  # a stale message: it runs, or its request is releasing it
    app_name, app_ns = app.metadata.name or "", app.metadata.namespace or ""
    for request in await ctx.kube.list(R.UPGRADEREQUEST, app_ns):
        if (request.get("spec") or {}).get("managedAppRef", {}).get("name") != app_name:
            continue
        phase = (request.get("status") or {}).get("phase")
        if phase in {p.value for p in TERMINAL_UPGRADE_PHASES}:
            continue
        if _targets(request, held):
            return str(request["metadata"]["name"])
    name = _request_name(app_name, held)
    path_texts = {i.values_path for i in app.spec.version_policy.images}
    spec: dict[str, Any] = {"managedAppRef": {"name": app_name}, "origin": "git"}
    if held.version:
        spec["targetVersion"] = held.version
    images = [{"valuesPath": p, "tag": t} for p, t in held.images if p in path_texts and t]
    if images:
        spec["targetImages"] = images
    body = {
        "apiVersion": API_VERSION,
        "kind": UPGRADE_REQUEST.kind,
        "metadata": {
            "name": name,
            "namespace": app_ns,
            "labels": {ann.MANAGED_APP_LABEL: label_safe(app_name)},
            "annotations": {HELD_AT: HELD_AT_RELEASE_RECORD, RELEASE_HELD: held.to_json()},
        },
        "spec": spec,
    }
    try:
        await ctx.kube.create(R.UPGRADEREQUEST, app_ns, body)
    except KubeConflict:
        return name  # exists (maybe Failed: delete it to try again)
    await ctx.events.record(
        app_obj, "HoldDetected",
        f"FluxUp's release-record gate holds {held.describe()}; created UpgradeRequest "
        f"{app_ns}/{name}",
    )
    return name


def build_release_approval(
    gate: ReleaseGate | None,
    held_text: str | None,
    version: str | None,
    images: dict[str, str | None],
) -> ReleaseIdentity | None:
    """What line 2 may let through for a request: the exact identity it was created for
    (``held_text``, a line-2 hold), else the deployed identity with the request's target
    (chart ``version``, image values) applied. ``None``: nothing to approve (nothing was
    deployed yet, which line 2 lets through as a first install)."""
    if held_text:
        try:
            return parse_release_identity(held_text)
        except ReleaseRecordError:
            return None
    if gate is None or not gate.deployed:
        return None
    return gate.deployed[0].with_target(version, images)


async def approve_release(
    ctx: Context,
    app_ns: str,
    app_name: str,
    request_ref: str,
    held_text: str | None,
    version: str | None,
    images: dict[str, str | None],
) -> None:
    """Write line 2's approval for ``request_ref`` on its ManagedApp (after snapshots)."""
    app_obj = await ctx.kube.get(R.MANAGEDAPP, app_ns, app_name)
    identity = build_release_approval(parse_release_gate(app_obj), held_text, version, images)
    if identity is None:
        return
    text = build_approval_annotation(identity, request_ref)
    current = ((app_obj.get("metadata") or {}).get("annotations") or {}).get(ann.RELEASE_APPROVED)
    if current != text:
        await ctx.kube.merge_patch(R.MANAGEDAPP, app_ns, app_name,
                                   {"metadata": {"annotations": {ann.RELEASE_APPROVED: text}}})


async def end_release_approval(
    ctx: Context, app_ns: str, app_name: str, request_ref: str, succeeded: bool
) -> None:
    """Remove the approval given to ``request_ref``; on success it becomes deployed."""
    app_obj = await ctx.kube.find(R.MANAGEDAPP, app_ns, app_name)
    gate = parse_release_gate(app_obj) if app_obj is not None else None
    if app_obj is None or gate is None or gate.approved_for != request_ref:
        return
    notes: dict[str, Any] = {ann.RELEASE_APPROVED: None}
    if succeeded and gate.approved is not None:
        notes[ann.RELEASE_GATE] = build_gate_annotation(
            gate.storage_namespace, gate.release, gate.paths, (gate.approved,)
        )
    await ctx.kube.merge_patch(R.MANAGEDAPP, app_ns, app_name, {"metadata": {"annotations": notes}})
