"""The gate's parser: typed views of admitted objects, the requester and Helm record Secrets.

Table-driven: well-formed objects, missing metadata, fields of the wrong type. Whatever
the input, parsing never raises; what cannot be read is absent, and unreadable policy
leaves a problem the rules answer with a hold.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxup.api import annotations as ann
from fluxup.logic.admitted import (
    Asker,
    build_requester,
    parse_admission,
    parse_admitted,
    parse_release_secret,
)
from fluxup.logic.gate import Outcome, Reason, evaluate
from fluxup.logic.gate_values import ValuePath
from fluxup.logic.identity import GatedKind, Identity, build_approval

HR = GatedKind.HELM_RELEASE
OCI = GatedKind.OCI_REPOSITORY
OPERATOR = "system:serviceaccount:fluxup-system:fluxup-operator"
FLUX = "system:serviceaccount:flux-system:kustomize-controller"
V124 = Identity("12.4.0", source="chart:app@HelmRepository/apps/charts")
APPROVAL = build_approval(Identity("12.5.0"), "UpgradeRequest/apps/r1")


def release(**metadata: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "my-app", "namespace": "apps", **metadata},
        "spec": {"chart": {"spec": {"chart": "app", "version": "12.5.0",
                                    "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
                 "values": {"image": {"tag": "1.0"}, "password": "hunter2"}, "suspend": True},
        "status": {"history": [{"chartVersion": "12.4.0"}]},
    }


def test_a_well_formed_helm_release() -> None:
    notes = {ann.HELD: "h", ann.HELD_SINCE: "2025-03-01T11:00:00Z", ann.APPROVED: APPROVAL,
             ann.RELEASED: V124.to_json(), ann.BYPASS: "INC-1", ann.BYPASSED: "b",
             ann.UPGRADE_REQUEST: "r1", ann.IMAGE_PATHS: '["image.tag"]', "other": "x"}
    obj = release(annotations=notes, labels={ann.MANAGED_APP_LABEL: " app "})
    view = parse_admitted(HR, obj)
    assert (view.name, view.namespace, view.app, view.managed) == ("my-app", "apps", "app", True)
    assert view.suspend is True
    assert (view.held, view.held_since) == ("h", "2025-03-01T11:00:00Z")
    assert view.approval is not None
    assert view.approval.request == "UpgradeRequest/apps/r1"
    assert view.released == V124
    assert (view.bypass, view.bypassed, view.upgrade_request) == ("INC-1", "b", "r1")
    assert dict(view.operator_notes) == {ann.APPROVED: APPROVAL, ann.RELEASED: V124.to_json(),
                                         ann.IMAGE_PATHS: '["image.tag"]'}
    assert (view.approved_text, view.released_text) == (APPROVAL, V124.to_json())
    assert view.policy == ((ValuePath(("image", "tag")),), ())
    assert view.status_charts == ("12.4.0",)
    assert view.source == "chart:app@HelmRepository/apps/charts"
    assert view.describe() == "HelmRelease apps/my-app"
    assert "hunter2" not in repr(view)  # spec.values stay out of reprs (and so out of logs)
    # the admission adds what the incoming object asks for
    desired = parse_admission(HR, obj, None, "CREATE", build_requester("", OPERATOR)).desired
    assert desired.identity.chart == "12.5.0"
    assert dict(desired.identity.images) == {"image.tag": "1.0"}
    assert (desired.ungated, desired.problems) == ((), ())


@pytest.mark.parametrize(("obj", "expected"), [
    # (name, namespace, app, managed, suspend, describe)
    (None, ("", "", "<unnamed>", False, None, "HelmRelease <unnamed>")),
    ([], ("", "", "<unnamed>", False, None, "HelmRelease <unnamed>")),
    ("a string", ("", "", "<unnamed>", False, None, "HelmRelease <unnamed>")),
    ({}, ("", "", "<unnamed>", False, None, "HelmRelease <unnamed>")),
    ({"metadata": None, "spec": None}, ("", "", "<unnamed>", False, None,
                                        "HelmRelease <unnamed>")),
    ({"metadata": ["x"], "spec": "x"}, ("", "", "<unnamed>", False, None,
                                        "HelmRelease <unnamed>")),
    ({"metadata": {"name": 5, "namespace": ["apps"]}},
     ("", "", "<unnamed>", False, None, "HelmRelease <unnamed>")),
    ({"metadata": {"name": "a"}, "spec": {"suspend": "true"}},
     ("a", "", "a", False, None, "HelmRelease a")),
    ({"metadata": {"name": "a", "namespace": "n"}, "spec": {"suspend": False}},
     ("a", "n", "a", False, False, "HelmRelease n/a")),
    # a label of the wrong type does not count; an empty one names no app but is there
    ({"metadata": {"name": "a", "labels": {ann.MANAGED_APP_LABEL: 1}}},
     ("a", "", "a", False, None, "HelmRelease a")),
    ({"metadata": {"name": "a", "labels": {ann.MANAGED_APP_LABEL: "  "}}},
     ("a", "", "a", True, None, "HelmRelease a")),
    ({"metadata": {"labels": ["x"]}}, ("", "", "<unnamed>", False, None,
                                       "HelmRelease <unnamed>")),
])
def test_metadata_of_any_shape(obj: Any, expected: tuple[Any, ...]) -> None:
    view = parse_admitted(HR, obj)
    got = (view.name, view.namespace, view.app, view.managed, view.suspend, view.describe())
    assert got == expected


@pytest.mark.parametrize(("annotations", "field", "expected"), [
    # annotations that are not a map, or values that are not text, read as absent
    (["x"], "held", None),
    ("x", "bypass", None),
    ({ann.HELD: 5}, "held", None),
    ({ann.BYPASS: None}, "bypass", None),
    ({ann.BYPASS: ""}, "bypass", ""),  # present but empty: still a bypass (no reason given)
    # malformed approvals and released identities approve and record nothing
    ({ann.APPROVED: "{"}, "approval", None),
    ({ann.APPROVED: Identity("12.5.0").to_json()}, "approval", None),  # not bound to a request
    ({ann.APPROVED: build_approval(Identity("1"), "Pod/apps/x")}, "approval", None),
    ({ann.RELEASED: "garbage"}, "released", None),
    ({ann.RELEASED: '{"chart": 5}'}, "released", None),
    ({ann.RELEASED: '{"chart": "1.0.0", "extra": 1}'}, "released", None),
])
def test_annotations_of_the_wrong_shape(annotations: Any, field: str, expected: Any) -> None:
    view = parse_admitted(HR, release(annotations=annotations))
    assert getattr(view, field) == expected


@pytest.mark.parametrize(("annotations", "operator_notes"), [
    ({ann.APPROVED: "a", ann.HELD: "h"}, {ann.APPROVED: "a"}),
    ({ann.IMAGE_PATHS: 5, ann.RELEASED: "r"}, {ann.RELEASED: "r"}),
    ("not a map", {}),
])
def test_operator_only_annotations(annotations: Any, operator_notes: dict[str, str]) -> None:
    assert dict(parse_admitted(HR, release(annotations=annotations)).operator_notes) == \
        operator_notes


@pytest.mark.parametrize(("status", "kind", "charts"), [
    ({"history": [{"chartVersion": "v12.4.0+build"}]}, HR, ("12.4.0+build",)),
    ({"history": [{"chartVersion": 12}]}, HR, ("12",)),
    ({"history": [{"chartVersion": True}]}, HR, ()),
    ({"history": ["12.4.0"], "lastAppliedRevision": "1.0.0"}, HR, ("1.0.0",)),
    ({"history": "12.4.0"}, HR, ()),
    ({"history": []}, HR, ()),
    ({"lastAppliedRevision": " "}, HR, ()),
    ("not a map", HR, ()),
    ({"artifact": {"revision": "1.2.3@sha256:abc"}}, OCI, ("1.2.3", "@sha256:abc")),
    ({"artifact": {"revision": "@"}}, OCI, ()),
    ({"artifact": "x"}, OCI, ()),
    ({"history": [{"chartVersion": "1.0.0"}]}, OCI, ()),  # another kind's status field
])
def test_status_charts(status: Any, kind: GatedKind, charts: tuple[str, ...]) -> None:
    assert parse_admitted(kind, {"status": status}).status_charts == charts


def test_oci_repository_view() -> None:
    obj = {"metadata": {"name": "chart", "annotations": {ann.IMAGE_PATHS: '["a..b"]'}},
           "spec": {"url": "oci://r/app", "ref": {"tag": "1.1.0"}}}
    view = parse_admitted(OCI, obj)
    desired = parse_admission(OCI, obj, None, "CREATE", build_requester("", OPERATOR)).desired
    assert desired.identity == Identity("1.1.0", source="oci:oci://r/app||")
    assert view.source == "oci:oci://r/app||"
    # image paths are a HelmRelease's policy: an OCIRepository has none, and no problems
    assert (view.policy, desired.problems) == (((), ()), ())
    assert view.describe() == "OCIRepository chart"


@pytest.mark.parametrize("paths", ["not json", '"image.tag"', "[1]", '["a..b"]', '{"a": 1}'])
def test_unreadable_policy_is_a_problem_and_the_rules_hold(paths: str) -> None:
    incoming = release(annotations={ann.IMAGE_PATHS: paths})
    assert parse_admitted(HR, incoming).policy[1]
    admission = parse_admission(HR, incoming, release(), "UPDATE", build_requester(FLUX, OPERATOR))
    assert admission.desired.problems
    decision = evaluate(admission)
    assert (decision.outcome, decision.reason) == (Outcome.HOLD, Reason.POLICY_UNREADABLE)


@pytest.mark.parametrize(("incoming", "stored", "operation", "reason"), [
    # an UPDATE without the stored object cannot know what runs: hold
    (release(), None, "UPDATE", Reason.STORED_OBJECT_MISSING),
    # a CREATE ignores a stored object and the incoming status
    (release(), release(), "CREATE", Reason.FIRST_INSTALL),
    # a stored object with no metadata and no spec still has its status read
    (release(), {"status": {"history": [{"chartVersion": "12.4.0"}]}}, "UPDATE",
     Reason.NOT_APPROVED),
])
def test_missing_or_partial_objects(incoming: Any, stored: Any, operation: Any,
                                    reason: Reason) -> None:
    admission = parse_admission(HR, incoming, stored, operation, build_requester("", OPERATOR))
    assert evaluate(admission).reason is reason


@pytest.mark.parametrize(("username", "options", "asker", "flux_apply"), [
    (OPERATOR, None, Asker.OPERATOR, False),
    (FLUX, None, Asker.FLUX, True),
    ("system:serviceaccount:gitops:kustomize-controller", None, Asker.FLUX, True),
    ("alice", {"fieldManager": "kustomize-controller"}, Asker.FLUX, True),
    ("alice", {"fieldManager": "kubectl"}, Asker.PERSON, False),
    ("alice", ["fieldManager"], Asker.PERSON, False),
    ("", None, Asker.PERSON, False),
    # the operator's own user is the operator whatever its field manager says
    (OPERATOR, {"fieldManager": "kustomize-controller"}, Asker.OPERATOR, True),
])
def test_who_asks(username: str, options: Any, asker: Asker, flux_apply: bool) -> None:
    requester = build_requester(username, OPERATOR, options)
    assert (requester.asker, requester.flux_apply) == (asker, flux_apply)


def test_admission_carries_operation_kind_and_dry_run() -> None:
    admission = parse_admission(OCI, {}, None, "CREATE", build_requester("", OPERATOR), True)
    assert (admission.kind, admission.operation, admission.stored, admission.dry_run) == (
        OCI, "CREATE", None, True)


def test_the_incoming_status_is_never_read() -> None:
    """Whatever status the client sends, the incoming view has none; the stored one's
    counts."""
    admission = parse_admission(HR, release(), release(), "UPDATE", build_requester("", OPERATOR))
    assert admission.incoming.status_charts == ()
    assert admission.stored is not None
    assert admission.stored.status_charts == ("12.4.0",)


@pytest.mark.parametrize(("obj", "request_ns", "expected"), [
    # (helm_owned, release, namespace, record)
    ({"metadata": {"namespace": "apps", "labels": {"owner": "helm", "name": "app"}},
      "data": {"release": "abc"}}, "", (True, "app", "apps", "abc")),
    ({"metadata": {"namespace": "apps", "labels": {"owner": "helm", "name": "app"}}},
     "other", (True, "app", "other", None)),
    ({"metadata": {"labels": {"owner": "someone", "name": "app"}}, "data": {"release": 5}},
     "ns", (False, "app", "ns", None)),
    ({"metadata": {"labels": {"owner": "helm", "name": 1}}, "data": "x"}, "",
     (True, "", "", None)),
    ({"metadata": "x"}, "", (False, "", "", None)),
    (None, "ns", (False, "", "ns", None)),
])
def test_release_secret(obj: Any, request_ns: str, expected: tuple[Any, ...]) -> None:
    secret = parse_release_secret(obj, request_ns)
    assert (secret.helm_owned, secret.release, secret.namespace, secret.record) == expected
    if secret.record is not None:
        assert secret.record not in repr(secret)  # a record holds values: never in a repr


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=8), children, max_size=3)),
    max_leaves=10,
)
notes_maps = st.dictionaries(
    st.sampled_from([ann.APPROVED, ann.RELEASED, ann.IMAGE_PATHS, ann.HELD, ann.HELD_SINCE,
                     ann.BYPASS, ann.BYPASSED, ann.UPGRADE_REQUEST]),
    st.one_of(st.text(max_size=10), st.just(json.dumps({"chart": "1"})), json_values),
    max_size=4,
)
objects = st.one_of(json_values, st.fixed_dictionaries({}, optional={
    "metadata": st.one_of(json_values, st.fixed_dictionaries(
        {}, optional={"name": json_values, "annotations": st.one_of(notes_maps, json_values),
                      "labels": json_values})),
    "spec": json_values, "status": json_values}))


@settings(max_examples=500, deadline=None)
@given(kind=st.sampled_from(list(GatedKind)), incoming=objects, stored=objects,
       username=st.sampled_from([OPERATOR, FLUX, "alice", ""]), options=json_values)
def test_parsing_never_raises(kind: GatedKind, incoming: Any, stored: Any, username: str,
                              options: Any) -> None:
    admission = parse_admission(kind, incoming, stored, "UPDATE",
                                build_requester(username, OPERATOR, options))
    assert evaluate(admission).outcome in (Outcome.ALLOW, Outcome.HOLD)
    parse_release_secret(incoming, "")
