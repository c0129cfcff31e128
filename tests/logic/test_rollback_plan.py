"""Rollback restore plan: quantities, the snapshot set, each PVC's next step, the new claim.

The data-safety rules are tested one by one: a claim is deleted only after its snapshot
is ReadyToUse, its volume is retained with the replacement claim recorded on it, and the
retained volume is recorded in the request's status.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxup.api.meta import Identity, ImageTag
from fluxup.logic.rollback_plan import (
    RESTORE_CLAIM_ANNOTATION,
    RESTORED_BY_ANNOTATION,
    RETAINED_BY_LABEL,
    RETAINED_PVC_ANNOTATION,
    RestoreStep,
    build_previous_identity_annotation,
    build_restored_pvc,
    build_retained_volume_patch,
    determine_restore_step,
    determine_snapshot_set,
    parse_previous_identity,
    parse_quantity,
    parse_restore_claim,
)
from fluxup.logic.snapshots import build_snapshot

REQUEST_ID = "shop/undo"

# --- quantities ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1Gi", 2**30),
        ("512Mi", 512 * 2**20),
        ("1G", 10**9),
        ("500M", 5 * 10**8),
        ("1.5Gi", 3 * 2**29),
        ("100", 100),
        (100, 100),
        ("1e3", 1000),
        ("2Ki", 2048),
        ("0.5", 1),  # rounded up: never smaller than asked
    ],
)
def test_parse_quantity(text: str | int, expected: int) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "Gi", "1GB", "-1Gi", "one", "1 Gi x"])
def test_parse_quantity_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_quantity(text)


@given(st.integers(min_value=0, max_value=2**50))
def test_parse_quantity_binary_roundtrip(n: int) -> None:
    assert parse_quantity(f"{n}Ki") == n * 1024


# --- the snapshot set ---------------------------------------------------------------


def snap(
    pvc: str,
    *,
    request: str = "up",
    app: str = "shop",
    ready: bool = True,
    error: str | None = None,
    size: str | None = "1Gi",
    previous: Identity | None = None,
) -> dict[str, Any]:
    body = build_snapshot(
        "shop", request, app, pvc, "csi", "1.1.0",
        build_previous_identity_annotation(previous) if previous else None,
    )
    status: dict[str, Any] = {"readyToUse": ready}
    if size:
        status["restoreSize"] = size
    if error:
        status["error"] = {"message": error}
    body["status"] = status
    return body


def test_snapshot_set_of_a_request() -> None:
    prev = Identity(version="1.0.0")
    found, problems = determine_snapshot_set(
        [snap("data", previous=prev), snap("web"), snap("other", request="older")],
        "shop", "up", {"data", "web"},
    )
    assert problems == []
    assert found is not None
    assert found.namespace == "shop"
    assert dict(found.pvcs) == {"data": "up-data", "web": "up-web"}
    assert dict(found.restore_sizes) == {"up-data": "1Gi", "up-web": "1Gi"}
    assert found.previous == prev


@pytest.mark.parametrize(
    ("snapshots", "problem"),
    [
        ([], "no VolumeSnapshots of upgrade up exist"),
        ([snap("data", ready=False)], "up-data is not ReadyToUse"),
        ([snap("data", ready=False, error="disk on fire")], "up-data failed: disk on fire"),
        ([snap("data", app="blog")], "belongs to app blog, not shop"),
        ([snap("cache")], "is of PVC cache, which shop does not use"),
        ([snap("data", request="other")], "no VolumeSnapshots of upgrade up exist"),
    ],
)
def test_snapshot_set_problems(snapshots: list[dict[str, Any]], problem: str) -> None:
    found, problems = determine_snapshot_set(snapshots, "shop", "up", {"data", "web"})
    assert found is None
    assert any(problem in p for p in problems), problems


def test_snapshot_set_refuses_two_snapshots_of_one_pvc() -> None:
    second = snap("data")
    second["metadata"]["name"] = "up-data-2"
    found, problems = determine_snapshot_set([snap("data"), second], "shop", "up", set())
    assert found is None
    assert problems == ["VolumeSnapshots up-data and up-data-2 both restore PVC data"]


def test_previous_identity_annotation_roundtrip() -> None:
    identity = Identity(version="1.0.0", images=(ImageTag("image.tag", "1.0.0"),))
    text = build_previous_identity_annotation(identity)
    key = "fluxup.dev/previous-identity"
    assert parse_previous_identity({key: text}) == identity
    assert parse_previous_identity({}) is None
    assert parse_previous_identity({key: "{not json"}) is None
    assert parse_previous_identity({key: "{}"}) is None  # nothing to return to


# --- one PVC ------------------------------------------------------------------------


def pvc(*, volume: str | None = "pv-1", restored_by: str | None = None,
        deleting: bool = False, snapshot: str = "up-data") -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "data",
        "namespace": "shop",
        "uid": "u-1",
        "resourceVersion": "7",
        "labels": {"app.kubernetes.io/managed-by": "Helm", "tier": "db"},
        "annotations": {
            "meta.helm.sh/release-name": "shop",
            "pv.kubernetes.io/bind-completed": "yes",
            "pv.kubernetes.io/bound-by-controller": "yes",
            "volume.kubernetes.io/storage-provisioner": "hostpath.csi",
            "volume.kubernetes.io/selected-node": "kwok-node",
        },
        "finalizers": ["kubernetes.io/pvc-protection"],
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "csi-hostpath-wffc",
        "volumeMode": "Filesystem",
        "resources": {"requests": {"storage": "1Gi"}},
    }
    if volume:
        spec["volumeName"] = volume
    if restored_by:
        meta["annotations"][RESTORED_BY_ANNOTATION] = restored_by
        spec["dataSource"] = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
                              "name": snapshot}
    return {"metadata": meta, "spec": spec, "status": {"phase": "Bound"}}


def pv(*, retain: bool = False, labelled: bool = False, claim: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "pv-1", "labels": {}, "annotations": {}}
    body = {"metadata": meta, "spec": {
        "persistentVolumeReclaimPolicy": "Retain" if retain else "Delete"}}
    if labelled:
        meta["labels"][RETAINED_BY_LABEL] = "undo"
    if claim:
        meta["annotations"][RESTORE_CLAIM_ANNOTATION] = json.dumps(
            build_restored_pvc(pvc(), "up-data", "1Gi", REQUEST_ID))
    return body


READY = snap("data")
SAFE_PV = pv(retain=True, labelled=True, claim=True)


@pytest.mark.parametrize(
    ("claim", "volume", "snapshot", "recorded", "step"),
    [
        pytest.param(pvc(restored_by=REQUEST_ID), None, READY, "pv-1", RestoreStep.DONE,
                     id="already-restored"),
        pytest.param(pvc(restored_by=REQUEST_ID), None, snap("data", ready=False), None,
                     RestoreStep.DONE, id="restored-even-if-snapshot-changed-later"),
        pytest.param(pvc(restored_by="shop/other"), SAFE_PV, READY, "pv-1",
                     RestoreStep.DELETE_CLAIM, id="restored-by-another-request-is-not-ours"),
        pytest.param(pvc(), pv(), snap("data", ready=False), None, RestoreStep.WAIT_SNAPSHOT,
                     id="snapshot-not-ready-touches-nothing"),
        pytest.param(pvc(), pv(), None, None, RestoreStep.WAIT_SNAPSHOT,
                     id="snapshot-missing-touches-nothing"),
        pytest.param(pvc(), SAFE_PV, snap("data", error="x", ready=False), "pv-1",
                     RestoreStep.WAIT_SNAPSHOT, id="failed-snapshot-never-deletes"),
        pytest.param(pvc(), pv(), READY, None, RestoreStep.RETAIN_VOLUME, id="retain-first"),
        pytest.param(pvc(), pv(retain=True), READY, None, RestoreStep.RETAIN_VOLUME,
                     id="retain-but-not-labelled"),
        pytest.param(pvc(), pv(retain=True, labelled=True), READY, None,
                     RestoreStep.RETAIN_VOLUME, id="retained-without-claim-template"),
        pytest.param(pvc(), SAFE_PV, READY, None, RestoreStep.RECORD_VOLUME,
                     id="record-before-delete"),
        pytest.param(pvc(), SAFE_PV, READY, "pv-other", RestoreStep.RECORD_VOLUME,
                     id="recorded-volume-differs"),
        pytest.param(pvc(), SAFE_PV, READY, "pv-1", RestoreStep.DELETE_CLAIM, id="delete"),
        pytest.param(pvc(deleting=True), SAFE_PV, READY, "pv-1", RestoreStep.WAIT_DELETED,
                     id="terminating"),
        pytest.param(None, SAFE_PV, READY, "pv-1", RestoreStep.CREATE_CLAIM, id="create"),
        pytest.param(None, pv(retain=True, labelled=True), READY, "pv-1", RestoreStep.BLOCKED,
                     id="gone-without-template"),
        pytest.param(None, None, READY, None, RestoreStep.BLOCKED, id="gone-nothing-recorded"),
        pytest.param(pvc(volume=None), None, READY, None, RestoreStep.BLOCKED, id="unbound"),
    ],
)
def test_determine_restore_step(
    claim: dict[str, Any] | None,
    volume: dict[str, Any] | None,
    snapshot: dict[str, Any] | None,
    recorded: str | None,
    step: RestoreStep,
) -> None:
    assert determine_restore_step(claim, volume, snapshot, REQUEST_ID, recorded)[0] is step


@given(
    ready=st.booleans(),
    retain=st.booleans(),
    labelled=st.booleans(),
    template=st.booleans(),
    recorded=st.sampled_from([None, "pv-1", "pv-2"]),
)
def test_delete_only_when_every_safety_rule_holds(
    ready: bool, retain: bool, labelled: bool, template: bool, recorded: str | None
) -> None:
    step, _ = determine_restore_step(
        pvc(), pv(retain=retain, labelled=labelled, claim=template), snap("data", ready=ready),
        REQUEST_ID, recorded,
    )
    safe = ready and retain and labelled and template and recorded == "pv-1"
    assert (step is RestoreStep.DELETE_CLAIM) == safe


def test_restored_claim_keeps_what_the_app_relies_on() -> None:
    new = build_restored_pvc(pvc(), "up-data", "1Gi", REQUEST_ID)
    assert new["metadata"] == {
        "name": "data",
        "namespace": "shop",
        "labels": {"app.kubernetes.io/managed-by": "Helm", "tier": "db"},
        "annotations": {"meta.helm.sh/release-name": "shop", RESTORED_BY_ANNOTATION: REQUEST_ID},
    }
    assert new["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "csi-hostpath-wffc",
        "volumeMode": "Filesystem",
        "resources": {"requests": {"storage": "1Gi"}},
        "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
                       "name": "up-data"},
    }
    assert determine_restore_step(new, None, READY, REQUEST_ID, None)[0] is RestoreStep.DONE


@pytest.mark.parametrize(
    ("request_size", "restore_size", "expected"),
    [("1Gi", "2Gi", "2Gi"), ("2Gi", "1Gi", "2Gi"), ("1Gi", None, "1Gi"),
     ("1G", "1Gi", "1Gi"), ("1Gi", "1Gi", "1Gi")],
)
def test_restored_claim_size_is_at_least_the_restore_size(
    request_size: str, restore_size: str | None, expected: str
) -> None:
    old = pvc()
    old["spec"]["resources"]["requests"]["storage"] = request_size
    new = build_restored_pvc(old, "up-data", restore_size, REQUEST_ID)
    assert new["spec"]["resources"]["requests"]["storage"] == expected


def test_retained_volume_patch_records_the_replacement_claim() -> None:
    claim = build_restored_pvc(pvc(), "up-data", "1Gi", REQUEST_ID)
    patch = build_retained_volume_patch("undo", claim)
    assert patch["spec"] == {"persistentVolumeReclaimPolicy": "Retain"}
    assert patch["metadata"]["labels"] == {RETAINED_BY_LABEL: "undo"}
    assert patch["metadata"]["annotations"][RETAINED_PVC_ANNOTATION] == "shop/data"
    assert parse_restore_claim(patch) == claim


def test_parse_restore_claim_refuses_garbage() -> None:
    for text in ("", "{", "[]", '{"spec": {}}'):
        assert parse_restore_claim(
            {"metadata": {"annotations": {RESTORE_CLAIM_ANNOTATION: text}}}) is None


def test_rollback_approval_keeps_source_and_other_images() -> None:
    from fluxup.logic.identity import Identity as GateIdentity
    from fluxup.logic.rollback_plan import build_rollback_approval

    desired = GateIdentity(chart="1.1.0", images=(("image.tag", "1.1.0"), ("db.tag", "7")),
                           source="HelmRepository/flux-system/charts/demo")
    part = GateIdentity(chart="1.0.0", images=(("image.tag", "1.0.0"),))
    approval = build_rollback_approval(desired, part)
    assert approval == GateIdentity(chart="1.0.0",
                                    images=(("db.tag", "7"), ("image.tag", "1.0.0")),
                                    source="HelmRepository/flux-system/charts/demo")
    assert part.satisfies(approval)
    # what the object asks for once Git is reverted passes the gate as approved
    assert dataclasses_replace_chart(desired, "1.0.0", "1.0.0").satisfies(approval)
    # a chartRef release: the HelmRelease itself carries no chart version
    assert build_rollback_approval(GateIdentity(source="OCIRepository/a/b"),
                                   GateIdentity()).chart is None


def dataclasses_replace_chart(identity: Any, chart: str, tag: str) -> Any:
    import dataclasses

    images = dict(identity.images) | {"image.tag": tag}
    return dataclasses.replace(identity, chart=chart, images=tuple(images.items()))
