"""Pre-upgrade VolumeSnapshots: names, objects, label values, readiness and retention."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from fluxup.logic.snapshots import (
    APP_LABEL,
    PVC_ANNOTATION,
    REQUEST_LABEL,
    VERSION_LABEL,
    SnapshotState,
    SnapshotStatus,
    build_snapshot,
    build_snapshot_name,
    determine_snapshot_status,
    label_safe,
    select_expired,
)

Obj = dict[str, Any]

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_name", "pvc", "expected"),
    [
        pytest.param("up-1", "data-web-0", "up-1-data-web-0", id="short"),
        pytest.param("a" * 40, "b" * 22, "a" * 40 + "-" + "b" * 22, id="exactly-63-kept"),
        # Pinned values: a reconcile after an operator upgrade must find the same names.
        pytest.param(
            "upgrade-podinfo-to-6-5-4-requested-from-the-ui",
            "data-podinfo-postgresql-0",
            "upgrade-podinfo-to-6-5-4-requested-from-the-ui-data-po-01d244d9",
            id="long-hashed",
        ),
        pytest.param(
            "a" * 53, "b" * 10, "a" * 53 + "-6a30f87a", id="64-hashed-trailing-dash-stripped"
        ),
    ],
)
def test_snapshot_name(request_name: str, pvc: str, expected: str) -> None:
    name = build_snapshot_name(request_name, pvc)
    assert name == expected
    assert len(name) <= 63
    assert DNS_LABEL.match(name)


@pytest.mark.parametrize("extra", [0, 1, 10, 100, 190])
def test_long_snapshot_names_are_short_stable_and_distinct(extra: int) -> None:
    request = "upgrade-" + "r" * (46 + extra)  # 64 characters and more
    first = build_snapshot_name(request, "data-db-0")
    assert len(first) <= 63
    assert first == build_snapshot_name(request, "data-db-0")  # deterministic
    assert re.fullmatch(r"[a-z0-9-]+-[0-9a-f]{8}", first)
    assert first[:54].rstrip("-") == f"{request}-data-db-0"[:54].rstrip("-")
    # PVCs of one request sharing the kept prefix still get different names.
    assert first != build_snapshot_name(request, "data-db-1")


def test_snapshot_name_strips_dots_before_hash() -> None:
    name = build_snapshot_name("r" * 52, ".pvc-with-a-long-name")  # cut after "-."
    assert re.fullmatch("r" * 52 + "-[0-9a-f]{8}", name)


# --- objects ----------------------------------------------------------------------------


def test_build_snapshot() -> None:
    assert build_snapshot("apps", "up-1", "podinfo", "data-web-0", "csi-hostpath", "6.5.4") == {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {
            "name": "up-1-data-web-0",
            "namespace": "apps",
            "labels": {APP_LABEL: "podinfo", REQUEST_LABEL: "up-1", VERSION_LABEL: "6.5.4"},
            "annotations": {PVC_ANNOTATION: "data-web-0"},
        },
        "spec": {
            "source": {"persistentVolumeClaimName": "data-web-0"},
            "volumeSnapshotClassName": "csi-hostpath",
        },
    }


@pytest.mark.parametrize("snapshot_class", [None, ""])
def test_build_snapshot_without_class_leaves_it_to_the_default(
    snapshot_class: str | None,
) -> None:
    obj = build_snapshot("apps", "up-1", "podinfo", "data-web-0", snapshot_class, "6.5.4")
    assert obj["spec"] == {"source": {"persistentVolumeClaimName": "data-web-0"}}


def test_build_snapshot_label_values_are_valid() -> None:
    app, request, version = "a" * 70, "u" * 70, "1.2.3+build.7"
    obj = build_snapshot("apps", request, app, "data", None, version)
    labels = obj["metadata"]["labels"]
    assert labels == {APP_LABEL: "a" * 63, REQUEST_LABEL: "u" * 63, VERSION_LABEL: "1.2.3_build.7"}
    assert all(LABEL_VALUE.match(v) and len(v) <= 63 for v in labels.values())
    assert obj["metadata"]["name"] == build_snapshot_name(request, "data")
    # the annotation keeps the exact PVC name (labels may be changed)
    assert obj["metadata"]["annotations"] == {PVC_ANNOTATION: "data"}


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        pytest.param("podinfo", 63, "podinfo", id="plain"),
        pytest.param("6.5.4", 63, "6.5.4", id="version"),
        pytest.param("v1.0.0-rc.1", 63, "v1.0.0-rc.1", id="prerelease"),
        pytest.param("1.2.3+build.1", 63, "1.2.3_build.1", id="plus-replaced"),
        pytest.param("6.5.4@sha256:abc", 63, "6.5.4_sha256_abc", id="digest"),
        pytest.param("a/b c", 63, "a_b_c", id="slash-and-space"),
        pytest.param("-abc-", 63, "abc", id="leading-trailing-dash"),
        pytest.param("._x_.", 63, "x", id="leading-trailing-punctuation"),
        pytest.param("+1.0+", 63, "1.0", id="replaced-at-edges-stripped"),
        pytest.param("a" * 70, 63, "a" * 63, id="capped"),
        pytest.param("a" * 62 + "-b", 63, "a" * 62, id="cut-at-dash-stripped"),
        pytest.param("abcdef", 3, "abc", id="custom-limit"),
        pytest.param("", 63, "", id="empty"),
        pytest.param("+++", 63, "", id="nothing-valid"),
    ],
)
def test_label_safe(value: str, limit: int, expected: str) -> None:
    result = label_safe(value, limit)
    assert result == expected
    assert LABEL_VALUE.match(result)
    assert len(result) <= limit


# --- readiness --------------------------------------------------------------------------


def snapshot(status: Obj | None, name: str = "up-1-data", pvc: str | None = "data") -> Obj:
    obj: Obj = {"metadata": {"name": name}, "spec": {}}
    if pvc is not None:
        obj["spec"]["source"] = {"persistentVolumeClaimName": pvc}
    if status is not None:
        obj["status"] = status
    return obj


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(
            {"readyToUse": True, "restoreSize": "1Gi"},
            SnapshotStatus("up-1-data", "data", SnapshotState.READY, restore_size="1Gi"),
            id="ready",
        ),
        pytest.param(
            {"readyToUse": True},
            SnapshotStatus("up-1-data", "data", SnapshotState.READY),
            id="ready-no-size",
        ),
        pytest.param(
            {"readyToUse": True, "error": {"message": "driver failed"}},
            SnapshotStatus("up-1-data", "data", SnapshotState.FAILED, "driver failed"),
            id="error-wins-over-ready",
        ),
        pytest.param(
            {
                "readyToUse": False,
                "error": {"message": "quota exceeded", "time": "2026-03-01T10:00:00Z"},
            },
            SnapshotStatus("up-1-data", "data", SnapshotState.FAILED, "quota exceeded"),
            id="error",
        ),
        pytest.param(
            {"readyToUse": False},
            SnapshotStatus("up-1-data", "data", SnapshotState.PENDING, "waiting for ReadyToUse"),
            id="not-ready",
        ),
        pytest.param(
            {"readyToUse": "true"},
            SnapshotStatus("up-1-data", "data", SnapshotState.PENDING, "waiting for ReadyToUse"),
            id="ready-string-not-true",
        ),
        pytest.param(
            {"error": {}},
            SnapshotStatus("up-1-data", "data", SnapshotState.PENDING, "waiting for ReadyToUse"),
            id="error-without-message",
        ),
        pytest.param(
            {},
            SnapshotStatus("up-1-data", "data", SnapshotState.PENDING, "waiting for ReadyToUse"),
            id="empty-status",
        ),
        pytest.param(
            None,
            SnapshotStatus("up-1-data", "data", SnapshotState.PENDING, "waiting for ReadyToUse"),
            id="no-status",
        ),
    ],
)
def test_snapshot_status(status: Obj | None, expected: SnapshotStatus) -> None:
    assert determine_snapshot_status(snapshot(status)) == expected


def test_snapshot_status_without_source() -> None:
    result = determine_snapshot_status(snapshot({"readyToUse": True}, pvc=None))
    assert (result.pvc, result.state) == ("", SnapshotState.READY)


# --- retention --------------------------------------------------------------------------

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def member(request: str | None, name: str, days_ago: float | None) -> Obj:
    meta: Obj = {"name": name, "labels": {APP_LABEL: "podinfo"}}
    if request is not None:
        meta["labels"][REQUEST_LABEL] = request
    if days_ago is not None:
        created = NOW - dt.timedelta(days=days_ago)
        meta["creationTimestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": meta}


THREE_SETS = [
    member("up-3", "up-3-data", 1),
    member("up-2", "up-2-data", 5),
    member("up-1", "up-1-data", 20),
]
WEEK = dt.timedelta(days=7)


@pytest.mark.parametrize(
    ("snapshots", "keep_last", "max_age", "protected", "expected"),
    [
        pytest.param(THREE_SETS, 3, None, [], [], id="keep-last-all-kept"),
        pytest.param(THREE_SETS, 2, None, [], ["up-1-data"], id="keep-last-oldest-deleted"),
        pytest.param(
            THREE_SETS, 1, None, [], ["up-2-data", "up-1-data"], id="keep-last-one-newest-first"
        ),
        pytest.param(THREE_SETS, 10, WEEK, [], ["up-1-data"], id="max-age"),
        pytest.param(
            THREE_SETS,
            10,
            dt.timedelta(days=5),
            [],
            ["up-1-data"],
            id="max-age-exactly-not-expired",
        ),
        pytest.param(
            THREE_SETS,
            10,
            dt.timedelta(days=2),
            [],
            ["up-2-data", "up-1-data"],
            id="max-age-several",
        ),
        pytest.param(
            THREE_SETS, 1, None, ["up-1"], ["up-2-data"], id="protected-beyond-keep-last-kept"
        ),
        pytest.param(
            THREE_SETS,
            10,
            dt.timedelta(days=2),
            ["up-1", "up-2"],
            [],
            id="protected-older-than-max-age-kept",
        ),
        pytest.param(
            THREE_SETS, 1, dt.timedelta(hours=1), ["up-1", "up-2", "up-3"], [], id="all-protected"
        ),
        pytest.param(
            THREE_SETS,
            1,
            dt.timedelta(hours=1),
            [],
            ["up-2-data", "up-1-data"],
            id="newest-set-kept-even-older-than-max-age",
        ),
        pytest.param(
            THREE_SETS,
            1,
            dt.timedelta(hours=1),
            ["up-9"],
            ["up-2-data", "up-1-data"],
            id="unknown-protected-request-changes-nothing",
        ),
        pytest.param(
            [
                member("up-2", "up-2-data", 5),
                member("up-2", "up-2-logs", 5),
                member("up-1", "up-1-logs", 20),
                member("up-1", "up-1-data", 20),
                member("up-3", "up-3-data", 1),
            ],
            1,
            None,
            [],
            ["up-2-data", "up-2-logs", "up-1-data", "up-1-logs"],
            id="whole-sets-deleted",
        ),
        pytest.param(
            # up-a's newest member is newer than up-b's, so up-a is the newer set even
            # though it also has the oldest member.
            [
                member("up-a", "up-a-old", 30),
                member("up-b", "up-b-data", 5),
                member("up-a", "up-a-new", 1),
            ],
            1,
            None,
            [],
            ["up-b-data"],
            id="sets-ordered-by-newest-member",
        ),
        pytest.param(
            [
                member("up-a", "up-a-old", 30),
                member("up-b", "up-b-data", 5),
                member("up-a", "up-a-new", 1),
            ],
            5,
            WEEK,
            [],
            [],
            id="set-age-is-its-newest-member",
        ),
        pytest.param(
            [
                member(None, "manual", 40),
                member("", "empty-label", 40),
                member("up-2", "up-2-data", 5),
                member("up-1", "up-1-data", 20),
            ],
            1,
            WEEK,
            [],
            ["up-1-data"],
            id="unlabelled-never-deleted",
        ),
        pytest.param(
            [
                member(None, "manual", 0),
                member("up-2", "up-2-data", 5),
                member("up-1", "up-1-data", 20),
            ],
            2,
            None,
            [],
            [],
            id="unlabelled-takes-no-keep-last-slot",
        ),
        pytest.param(
            [member("up-2", "up-2-data", 5), member("up-1", "up-1-data", None)],
            1,
            None,
            [],
            ["up-1-data"],
            id="missing-timestamp-is-oldest",
        ),
        pytest.param(
            [member(label_safe("u" * 70), "long-data", 20), member("up-2", "up-2-data", 1)],
            1,
            WEEK,
            ["u" * 70],
            [],
            id="protected-name-compared-as-label",
        ),
        pytest.param([], 1, WEEK, [], [], id="no-snapshots"),
    ],
)
def test_select_expired(
    snapshots: list[Obj],
    keep_last: int,
    max_age: dt.timedelta | None,
    protected: list[str],
    expected: list[str],
) -> None:
    assert select_expired(snapshots, keep_last, max_age, NOW, protected) == expected


def test_select_expired_never_returns_the_newest_set() -> None:
    sets = [member(f"up-{i}", f"up-{i}-data", 100 + i) for i in range(5)]
    expired = select_expired(sets, 1, dt.timedelta(seconds=1), NOW, [])
    assert "up-0-data" not in expired
    assert sorted(expired) == sorted(f"up-{i}-data" for i in range(1, 5))


def _failed(snap: Obj) -> Obj:
    snap["status"] = {"readyToUse": False, "error": {"message": "disk full"}}
    return snap


def test_failed_sets_are_pruned_and_take_no_slot() -> None:
    sets = [
        _failed(member("up-3", "up-3-data", 1)),  # newest, but failed: restores nothing
        member("up-2", "up-2-data", 5),
        member("up-1", "up-1-data", 20),
    ]
    assert select_expired(sets, 2, None, NOW, []) == ["up-3-data"]


def test_a_protected_failed_set_is_kept() -> None:
    sets = [_failed(member("up-3", "up-3-data", 1)), member("up-2", "up-2-data", 5)]
    assert select_expired(sets, 1, None, NOW, ["up-3"]) == []
