"""Line 2 of the gate: decoding Helm release records and deciding on them."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxup.api import annotations as ann
from fluxup.logic.gate_values import parse_value_path
from fluxup.logic.release_record import (
    MAX_RELEASE_BYTES,
    ReleaseGate,
    ReleaseIdentity,
    ReleaseRecordError,
    build_approval_annotation,
    build_gate_annotation,
    coalesce_values,
    decide_release_record,
    decode_release,
    identity_paths,
    operator_only_app_change,
    parse_hold_marker,
    parse_release_gate,
    parse_release_identity,
    strip_build_metadata,
)

IMAGE = (parse_value_path("image.tag"),)


def helm_record(version: str = "1.0.0", tag: str | None = "1.0", *, chart: str = "demo-app",
                config_extra: dict[str, Any] | None = None, gz: bool = True) -> str:
    """``data.release`` as the apiserver shows it: base64 of Helm's base64(gzip(JSON))."""
    config: dict[str, Any] = {"image": {"tag": tag}} if tag is not None else {}
    config.update(config_extra or {})
    release = {
        "name": "web", "namespace": "apps", "version": 3,
        "chart": {"metadata": {"name": chart, "version": version},
                  "values": {"image": {"repository": "reg/demo", "tag": ""}, "password": "s3cr3t"}},
        "config": config,
        "info": {"status": "pending-upgrade"},
    }
    raw = json.dumps(release).encode()
    helm = base64.b64encode(gzip.compress(raw) if gz else raw)
    return base64.b64encode(helm).decode()


def gate(deployed: tuple[ReleaseIdentity, ...] = (), approved: ReleaseIdentity | None = None
         ) -> ReleaseGate:
    return ReleaseGate("apps/web", "apps", "web", IMAGE, deployed, approved,
                       "UpgradeRequest/apps/u")


V1 = ReleaseIdentity("demo-app", "1.0.0", (("image.digest", None), ("image.registry", None),
                                           ("image.repository", "reg/demo"), ("image.tag", "1.0")))


def test_decode_merges_chart_defaults_with_user_values() -> None:
    record = decode_release(helm_record())
    assert (record.name, record.namespace, record.revision) == ("web", "apps", 3)
    assert record.identity(IMAGE) == V1


def test_uncompressed_records_decode_too() -> None:
    assert decode_release(helm_record(gz=False)).identity(IMAGE) == V1


@pytest.mark.parametrize(("text", "why"), [
    ("%%%", "not base64"),
    (base64.b64encode(base64.b64encode(b"\x1f\x8bnope")).decode(), "not valid gzip"),
    (base64.b64encode(base64.b64encode(b"[1]")).decode(), "not a JSON object"),
    (base64.b64encode(base64.b64encode(b'{"name": "x"}')).decode(), "lacks its name"),
])
def test_bad_records_are_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(ReleaseRecordError, match=why):
        decode_release(text)


def test_a_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b" " * (MAX_RELEASE_BYTES + 10))
    text = base64.b64encode(base64.b64encode(bomb)).decode()
    with pytest.raises(ReleaseRecordError, match="decompresses to more than"):
        decode_release(text)


def test_coalesce_follows_helm_null_deletes_and_deep_merge() -> None:
    merged = coalesce_values({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 9}, "d": None})
    assert merged == {"a": {"b": 9, "c": 2}}


def test_image_paths_bring_their_repository_registry_and_digest() -> None:
    got = [str(p) for p in identity_paths((parse_value_path("db.image.tag"),))]
    assert got == ["db.image.digest", "db.image.registry", "db.image.repository", "db.image.tag"]


@pytest.mark.parametrize(("text", "plain"), [
    ("1.0.0+abc", "1.0.0"), ("v1.2.3", "1.2.3"), ("=2.0.0-rc.1+build.5", "2.0.0-rc.1"),
])
def test_build_metadata_is_not_a_new_version(text: str, plain: str) -> None:
    assert strip_build_metadata(text) == plain
    assert ReleaseIdentity("c", text).version == plain


# --- decisions -------------------------------------------------------------------


def test_unmanaged_release_passes() -> None:
    assert decide_release_record(decode_release(helm_record("9.9.9")), []).allowed


def test_deployed_identity_passes() -> None:
    verdict = decide_release_record(decode_release(helm_record()), [gate((V1,))])
    assert verdict.allowed


def test_first_install_passes() -> None:
    assert decide_release_record(decode_release(helm_record("2.0.0")), [gate()]).allowed


@pytest.mark.parametrize(("record", "what"), [
    (helm_record("2.0.0"), "chart version"),
    (helm_record(tag="2.0"), "image tag from any values source"),
    (helm_record(chart="other-chart"), "chart name"),
    (helm_record(config_extra={"image": {"tag": "1.0", "repository": "evil/demo"}}), "image repo"),
    (helm_record(config_extra={"image": {"tag": "1.0", "digest": "sha256:00"}}), "image digest"),
])
def test_any_identity_change_is_denied_with_the_held_identity(record: str, what: str) -> None:
    verdict = decide_release_record(decode_release(record), [gate((V1,))])
    assert not verdict.allowed, what
    assert verdict.reason == "NotApproved"
    assert verdict.held is not None
    assert parse_hold_marker(verdict.message) == verdict.held
    assert "s3cr3t" not in verdict.message  # values other than image values never leak


def test_the_approved_identity_passes_and_nothing_else() -> None:
    new = decode_release(helm_record("2.0.0")).identity(IMAGE)
    assert decide_release_record(decode_release(helm_record("2.0.0")),
                                 [gate((V1,), approved=new)]).allowed
    assert not decide_release_record(decode_release(helm_record("3.0.0")),
                                     [gate((V1,), approved=new)]).allowed


def test_an_unreadable_record_of_a_managed_release_is_denied() -> None:
    verdict = decide_release_record(ReleaseRecordError("not base64"), [gate((V1,))])
    assert not verdict.allowed
    assert verdict.reason == "RecordUnreadable"


def test_every_app_sharing_a_release_must_agree() -> None:
    other = ReleaseGate("apps/other", "apps", "web", (), (ReleaseIdentity("demo-app", "1.0.0"),))
    verdict = decide_release_record(decode_release(helm_record(tag="2.0")), [other, gate((V1,))])
    assert not verdict.allowed


def test_hold_marker_is_read_back_from_a_wrapped_message() -> None:
    held = ReleaseIdentity("c", "2.0.0", (("image.tag", "x"),))
    message = ("Helm upgrade failed: create: failed to create: admission webhook "
               f'"release-records.fluxup.dev" denied the request: ... fluxup-hold={held.to_json()}')
    assert parse_hold_marker(message) == held
    assert parse_hold_marker("Helm upgrade failed: timeout") is None


# --- the ManagedApp annotations --------------------------------------------------


def app_obj(notes: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "apps", "annotations": notes,
                         "labels": labels or {}}}


def test_gate_annotations_round_trip() -> None:
    new = ReleaseIdentity("demo-app", "2.0.0")
    notes = {
        ann.RELEASE_GATE: build_gate_annotation("apps", "web", IMAGE, (V1,)),
        ann.RELEASE_APPROVED: build_approval_annotation(new, "UpgradeRequest/apps/u1"),
    }
    parsed = parse_release_gate(app_obj(notes))
    assert parsed is not None
    assert (parsed.storage_namespace, parsed.release, parsed.deployed) == ("apps", "web", (V1,))
    assert (parsed.approved, parsed.approved_for) == (new, "UpgradeRequest/apps/u1")
    assert parse_release_identity(new.to_json()) == new


def test_a_corrupted_gate_annotation_denies_rather_than_opens() -> None:
    parsed = parse_release_gate(app_obj({ann.RELEASE_GATE: "{not json"}))
    assert parsed is not None
    record = decode_release(helm_record())
    broken = ReleaseGate(parsed.app, "apps", "web", IMAGE, parsed.deployed)
    assert not decide_release_record(record, [broken]).allowed


@pytest.mark.parametrize(("before", "after", "changed"), [
    ({}, {ann.RELEASE_APPROVED: "x"}, "annotation fluxup.dev/release-approved"),
    ({ann.RELEASE_GATE: "a"}, {ann.RELEASE_GATE: "b"}, "annotation fluxup.dev/release-gate"),
    ({ann.RELEASE_GATE: "a"}, {ann.RELEASE_GATE: "a"}, None),
])
def test_operator_only_app_metadata(before: dict[str, str], after: dict[str, str],
                                    changed: str | None) -> None:
    assert operator_only_app_change(app_obj(after), app_obj(before)) == changed


def test_the_release_key_label_is_operator_only() -> None:
    old = app_obj({}, {ann.RELEASE_KEY_LABEL: "k"})
    assert operator_only_app_change(app_obj({}), old) == f"label {ann.RELEASE_KEY_LABEL}"


# --- the invariant, for any sequence of events -----------------------------------

VERSIONS = st.sampled_from(["1.0.0", "1.1.0", "2.0.0"])
TAGS = st.sampled_from(["1.0", "1.1", "2.0"])
EVENTS = st.lists(st.tuples(st.sampled_from(["apply", "approve", "release", "end", "delete"]),
                            VERSIONS, TAGS), max_size=25)


@given(EVENTS)
def test_no_identity_runs_without_having_been_deployed_or_approved(events: list[Any]) -> None:
    """A pure model: whatever order of applies, approvals, successful releases, request
    ends and HelmRelease re-creations, a revision written by Helm is the deployed one or
    the one approved (after snapshots) — never anything else."""
    deployed: tuple[ReleaseIdentity, ...] = (V1,)
    approved: ReleaseIdentity | None = None
    snapshotted: set[ReleaseIdentity] = set()
    for kind, version, tag in events:
        ident = decode_release(helm_record(version, tag)).identity(IMAGE)
        if kind == "approve":
            snapshotted.add(ident)  # the operator approves only after ReadyToUse snapshots
            approved = ident
        elif kind == "end":
            approved = None
        elif kind in ("apply", "delete", "release"):  # a re-created HelmRelease applies too
            verdict = decide_release_record(decode_release(helm_record(version, tag)),
                                            [gate(deployed, approved)])
            if verdict.allowed:
                assert ident in deployed or ident in snapshotted
                if kind == "release":
                    deployed, approved = (ident,), None
