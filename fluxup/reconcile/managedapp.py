"""Reconcile a ManagedApp into a status a user can trust (one pass, one status write).

Called by :mod:`fluxup.handlers.registry` on every event and on a timer. A pass
loads the HelmRelease, labels it (and its OCIRepository) for the admission gate, makes
sure every hold has a request and every bypass is audited (level-triggered), observes
the deployed version from helm-controller's status, runs discovery
(:mod:`fluxup.reconcile.managedapp_discovery`: the chart source, the Kustomization,
GitRepository and Git file, the PVCs, workloads and VolumeSnapshotClass) and writes the
conditions summarized into ``Ready`` (:mod:`fluxup.logic.managedapp_status`). The
fields owned by the UpgradeRequest reconciler (``activeRequest``, ``lastUpgrade``) and
by Renovate ingestion (``availableUpdate(s)``) are never written here; an automatic
upgrade that was held back (maintenance window, a request in flight) is started from
them (:func:`~fluxup.reconcile.auto_update.ensure_due_auto_upgrade`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from fluxup.adapters.kube import Obj, R
from fluxup.api import annotations as ann
from fluxup.api._codec import encode
from fluxup.api.conditions import ConditionType, Reason
from fluxup.api.managedapp import (
    HelmReleaseInfo,
    ManagedApp,
)
from fluxup.api.meta import ImageTag
from fluxup.errors import KubeConflict
from fluxup.logic import discovery
from fluxup.logic.admitted import oci_revision_charts
from fluxup.logic.hold_requests import HoldState
from fluxup.logic.identity import (
    GatedKind,
    approved_identity,
    determine_desired,
    parse_identity,
)
from fluxup.logic.managedapp_status import (
    Observation,
    merge_scan_conditions,
    summarize_managedapp,
)
from fluxup.logic.merge_patch import changes
from fluxup.logic.release_record import parse_release_gate
from fluxup.reconcile.announce import announce_available
from fluxup.reconcile.approvals import remove_outlived_approvals
from fluxup.reconcile.auto_update import ensure_due_auto_upgrade
from fluxup.reconcile.bypass import record_bypass
from fluxup.reconcile.context import Context
from fluxup.reconcile.holds import ensure_hold_handled
from fluxup.reconcile.managedapp_discovery import (
    SNAPSHOT_CAPABLE,
    observe_chart_source,
    observe_git,
    observe_volumes,
)
from fluxup.reconcile.managedapp_finalizer import ensure_finalizer, let_go
from fluxup.reconcile.release_gate import ensure_release_gate, ensure_request_for_record_hold
from fluxup.reconcile.retention import prune_snapshots

__all__ = ["HELD", "SNAPSHOT_CAPABLE", "reconcile_managedapp"]

HELD = ConditionType.HELD.value
_WRITE_ATTEMPTS = 3


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
        elif not shared:
            released = _at_rest_identity(obj) if want_paths else _at_rest_source_identity(obj)
            if released is not None and _annotations(obj).get(ann.RELEASED) != released:
                notes[ann.RELEASED] = released
        if notes:
            patch.setdefault("metadata", {})["annotations"] = notes
        if patch:
            meta = obj["metadata"]
            await ctx.kube.merge_patch(res, meta["namespace"], meta["name"], patch)


def _at_rest(obj: Obj) -> bool:
    """A Flux object whose spec is what runs: not held, not suspended, reconciled at its
    generation and Ready."""
    status = obj.get("status") or {}
    conditions = status.get("conditions") or []
    ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
    return not (
        ann.HELD in _annotations(obj)
        or (obj.get("spec") or {}).get("suspend")
        or status.get("observedGeneration") != (obj.get("metadata") or {}).get("generation")
        or ready.get("status") != "True"
    )


def _at_rest_identity(hr: Obj) -> str | None:
    """The identity a HelmRelease at rest runs, or ``None`` when it is not at rest.

    Recorded as ``fluxup.dev/released`` so that, once a later change is held, the gate
    still knows where the running chart came from (a held spec is not what runs)."""
    if not _at_rest(hr):
        return None
    spec = hr.get("spec") or {}
    desired = determine_desired(GatedKind.HELM_RELEASE, hr)
    if desired.problems:
        return None
    identity = desired.identity
    if identity.chart is None and not spec.get("chartRef"):
        version = discovery.determine_deployed_version(hr)  # a range: what it resolved to
        identity = replace(identity, chart=version) if version else identity
    return identity.to_json()


def _at_rest_source_identity(oci: Obj) -> str | None:
    """The identity an OCIRepository at rest serves: its pinned tag, once the artifact
    source-controller fetched is that tag. Recorded as ``fluxup.dev/released`` so the gate
    never mistakes a source whose ``status.artifact`` is gone (a failed fetch, a
    re-created object) for a first install."""
    if not _at_rest(oci):
        return None
    desired = determine_desired(GatedKind.OCI_REPOSITORY, oci)
    if desired.problems or desired.identity.chart not in oci_revision_charts(oci):
        return None
    return desired.identity.to_json()


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
    hr: Obj, oci: Obj | None, recorded: bool, seen: Observation, notes: list[str]
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
        if not text:
            continue
        try:
            identity = parse_identity(text)
        except ValueError:
            held.append(f"{obj.get('kind')} (unreadable hold)")
            continue
        if identity != approved_identity(obj):
            held.append(f"{obj.get('kind')} {identity.describe()}")
    seen.condition(
        HELD,
        bool(held),
        "Held" if held else "NotHeld",
        "; ".join(["holding " + ", ".join(held), *notes]) if held else "nothing held",
    )


def _current(app: ManagedApp, hr: Obj, seen: Observation) -> None:
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


async def _write_status(ctx: Context, namespace: str, name: str, status: Obj) -> bool:
    """Write ``status``, keeping the Renovate scan's conditions as they are now (a scan in
    another process may have written them during this pass): re-read, merge, patch at that
    resourceVersion, and again on a conflict. A status that would not change is not
    sent: at rest, a resync costs the API server one read per app instead of a read and a
    PATCH (which the server decodes, converts and compares before finding nothing to
    store). False when the app is gone."""
    for _ in range(_WRITE_ATTEMPTS):
        current = await ctx.kube.find(R.MANAGEDAPP, namespace, name)
        if current is None:
            return False
        stored = current.get("status") or {}
        conditions = merge_scan_conditions(status["conditions"], stored.get("conditions") or [])
        patch = {**status, "conditions": conditions}
        if not changes(stored, patch):
            return True
        try:
            await ctx.kube.merge_patch(R.MANAGEDAPP, namespace, name, {
                "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
                "status": patch,
            }, sub="status")
            return True
        except KubeConflict:
            continue
    raise KubeConflict(f"ManagedApp {namespace}/{name} kept changing while its status was "
                       f"written ({_WRITE_ATTEMPTS} attempts); trying again later")


async def reconcile_managedapp(ctx: Context, obj: Obj) -> None:
    """One level-triggered pass over a ManagedApp."""
    if obj["metadata"].get("deletionTimestamp"):
        await let_go(ctx, obj)  # deleting it is the way out of the gate
        return
    await ensure_finalizer(ctx, obj)
    app = ManagedApp.from_dict(obj)
    now = ctx.now()
    seen = Observation()
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
        oci = await observe_chart_source(ctx, hr, seen)
        await remove_outlived_approvals(ctx, obj, (hr, oci))  # never outlive their request
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
        await observe_git(ctx, app, hr, seen)
        await observe_volumes(ctx, app, hr, seen)
    old_ready = next((c for c in app.status.conditions if c.type == ConditionType.READY), None)
    status = dict(seen.status)
    status["observedGeneration"] = app.metadata.generation
    status["conditions"] = [encode(c) for c in summarize_managedapp(
        app.status.conditions, seen, app.spec.volume_snapshots.enabled,
        app.spec.helm_release_ref.name, app.metadata.generation, now,
    )]
    if not await _write_status(ctx, app.metadata.namespace or "", app.metadata.name, status):
        return
    await announce_available(ctx, obj, app)
    if hr is not None:
        await ensure_due_auto_upgrade(ctx, app)
    if app.spec.volume_snapshots.retention_policy.max_age and app.status.active_request is None:
        await prune_snapshots(ctx, app)  # sets expire on time, not only at the next upgrade
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
