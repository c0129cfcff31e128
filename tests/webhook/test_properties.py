"""Property tests: thousands of random and malformed AdmissionReviews.

* Every well-formed review gets HTTP 200 and a well-formed response echoing its uid;
  a patch, when present, applies cleanly to the object it was computed for.
* Every malformed body gets HTTP 400; nothing ever yields a 500.
* Gate consistency: whatever Flux applies, the validating stage never denies the object
  the mutating stage produced on hold grounds — not even a Git manifest that says
  ``suspend: false`` during a hold (it stays held); a person's deliberate un-suspend of a
  held object is denied.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import jsonpatch
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxup.api import annotations as ann
from fluxup.logic.admitted import build_requester, parse_admission
from fluxup.logic.gate import build_mutation, evaluate
from fluxup.logic.gate_validation import validate_gated_object
from fluxup.logic.identity import GatedKind, Identity
from tests.webhook.conftest import NOW, OPERATOR
from tests.webhook.conftest import settings as webhook_settings
from webhook.app import create_app

FLUX = "system:serviceaccount:flux-system:kustomize-controller"
#: Denials that come from the hold rules (not from the operator-only annotations).
HOLD_GROUNDS = ("HeldUnsuspend", "HeldMismatch", "BypassBindingMismatch")

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False,
    allow_infinity=False), st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
versions = st.one_of(
    st.sampled_from(["12.4.0", "12.5.0", "v12.5.0", "12.x", ">=12", "^1.2", "~1.2", "*", "",
                     "1.0.0-rc.1"]),
    st.text(max_size=8), st.integers(0, 20), st.none(),
)
tags = st.one_of(st.sampled_from(["1.0", "1.1", "latest"]), st.text(max_size=6), st.none())
identities = st.builds(
    lambda chart, img: Identity(chart, (("image.tag", img),) if img is not None else ()).to_json(),
    st.one_of(st.none(), st.sampled_from(["12.4.0", "12.5.0", "1.1.0"])), tags,
)
annotation_values = st.one_of(identities, st.text(max_size=10),
                              st.sampled_from(['["image.tag"]', "[]", "[1]", "{"]))
annotation_maps = st.dictionaries(
    st.sampled_from([ann.APPROVED, ann.RELEASED, ann.IMAGE_PATHS, ann.HELD, ann.HELD_SINCE,
                     ann.BYPASS, ann.BYPASSED, ann.UPGRADE_REQUEST, "other"]),
    annotation_values, max_size=5,
)


@st.composite
def flux_objects(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if kind == "HelmRelease":
        if draw(st.booleans()):
            spec["chart"] = {"spec": {"chart": "app", "version": draw(versions)}}
        else:
            spec["chartRef"] = draw(st.one_of(st.just({"kind": "OCIRepository", "name": "x"}),
                                              json_values))
        spec["values"] = draw(st.one_of(st.fixed_dictionaries({"image": st.fixed_dictionaries(
            {"tag": tags})}), json_values))
    else:
        spec["ref"] = draw(st.one_of(
            st.fixed_dictionaries({}, optional={"tag": tags, "semver": versions,
                                                "digest": st.sampled_from(["sha256:aa", ""])}),
            json_values))
    suspend = draw(st.one_of(st.just("absent"), st.booleans(), json_scalars))
    if suspend != "absent":
        spec["suspend"] = suspend
    metadata: dict[str, Any] = {"name": "my-app", "namespace": "apps"}
    if draw(st.booleans()):
        metadata["labels"] = {ann.MANAGED_APP_LABEL: "my-app"}
    notes = draw(st.one_of(annotation_maps, json_values))
    if notes is not None:
        metadata["annotations"] = notes
    obj: dict[str, Any] = {"metadata": draw(st.one_of(st.just(metadata), json_values)),
                           "spec": draw(st.one_of(st.just(spec), json_values))}
    status = draw(st.one_of(
        st.none(),
        st.fixed_dictionaries({"history": st.lists(st.fixed_dictionaries(
            {"chartVersion": versions}), max_size=2)}),
        st.fixed_dictionaries({"lastAppliedRevision": versions}),
        st.fixed_dictionaries({"artifact": st.fixed_dictionaries(
            {"revision": st.sampled_from(["1.0.0@sha256:aa", "sha256:aa", "1.0.0/aa", "x"])})}),
        json_values,
    ))
    if status is not None:
        obj["status"] = status
    return obj


KINDS = [
    ("helm.toolkit.fluxcd.io", v, "HelmRelease") for v in ("v2", "v2beta2", "v2beta1")
] + [
    ("source.toolkit.fluxcd.io", v, "OCIRepository") for v in ("v1", "v1beta2")
] + [
    ("fluxup.dev", "v1alpha1", k) for k in ("ManagedApp", "UpgradeRequest", "RollbackRequest")
] + [("apps", "v1", "Deployment")]


@st.composite
def well_formed_reviews(draw: st.DrawFn) -> dict[str, Any]:
    group, version, kind = draw(st.sampled_from(KINDS))
    objects = st.one_of(st.none(), flux_objects(kind),
                        st.dictionaries(st.text(max_size=6), json_values, max_size=4))
    request: dict[str, Any] = {
        "uid": draw(st.text(min_size=1, max_size=40)),
        "kind": {"group": group, "version": version, "kind": kind},
        "operation": draw(st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT"])),
        "object": draw(objects),
        "oldObject": draw(objects),
    }
    optional = draw(st.fixed_dictionaries({}, optional={
        "userInfo": st.one_of(st.fixed_dictionaries({"username": st.sampled_from(
            [FLUX, OPERATOR, "alice"])}), json_values),
        "namespace": st.one_of(st.just("apps"), json_values),
        "name": json_values,
        "subResource": st.one_of(st.sampled_from(["", "status"]), json_values),
        "dryRun": json_values,
        "options": json_values,
        "resource": json_values,
    }))
    request.update(optional)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def _broken_envelopes() -> st.SearchStrategy[Any]:
    valid: dict[str, Any] = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
             "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "X"},
                         "operation": "CREATE"}}

    def breaking(path: tuple[str, ...], value: Any) -> dict[str, Any]:
        doc = copy.deepcopy(valid)
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
        return doc

    bad_values = st.one_of(st.just(_DELETE), json_scalars, st.lists(json_scalars, max_size=2))
    targets = st.sampled_from([
        ("apiVersion",), ("kind",), ("request",), ("request", "uid"), ("request", "kind"),
        ("request", "operation"), ("request", "object"), ("request", "oldObject"),
    ])
    broken = st.builds(breaking, targets, bad_values).filter(_is_malformed)
    return st.one_of(broken, json_scalars, st.lists(json_values, max_size=3))


_DELETE = object()


def _is_malformed(doc: dict[str, Any]) -> bool:
    request = doc.get("request")
    if doc.get("apiVersion") != "admission.k8s.io/v1" or doc.get("kind") != "AdmissionReview":
        return True
    if not isinstance(request, dict):
        return True
    uid, kind = request.get("uid"), request.get("kind")
    if not isinstance(uid, str) or not uid or request.get("operation") not in (
            "CREATE", "UPDATE", "DELETE", "CONNECT"):
        return True
    if not isinstance(kind, dict) or not isinstance(kind.get("kind"), str) or not kind["kind"]:
        return True
    return any(request.get(f) is not None and not isinstance(request.get(f), dict)
               for f in ("object", "oldObject"))


@pytest.fixture(scope="module")
async def shared_client() -> AsyncIterator[TestClient[Any, Any]]:
    app = await create_app(webhook_settings(), clock=lambda: NOW)
    async with TestClient(TestServer(app)) as c:
        yield c


PROPERTY_SETTINGS = settings(
    max_examples=1500, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(body=well_formed_reviews(), path=st.sampled_from(["/mutate", "/validate"]))
async def test_well_formed_reviews_get_well_formed_responses(
    shared_client: TestClient[Any, Any], body: dict[str, Any], path: str
) -> None:
    resp = await shared_client.post(path, data=json.dumps(body).encode())
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert doc["apiVersion"] == "admission.k8s.io/v1"
    assert doc["kind"] == "AdmissionReview"
    response = doc["response"]
    assert response["uid"] == body["request"]["uid"]
    assert isinstance(response["allowed"], bool)
    assert all(isinstance(w, str) for w in response.get("warnings", []))
    if not response["allowed"]:
        assert isinstance(response["status"]["code"], int)
        assert response["status"]["message"]
    if "patch" in response:
        assert path == "/mutate"
        assert response["patchType"] == "JSONPatch"
        ops = json.loads(base64.b64decode(response["patch"]))
        assert isinstance(ops, list)
        jsonpatch.apply_patch(copy.deepcopy(body["request"]["object"]), ops)


@PROPERTY_SETTINGS
@given(body=st.one_of(_broken_envelopes(), st.binary(max_size=64)),
       path=st.sampled_from(["/mutate", "/validate"]))
async def test_malformed_bodies_get_400(
    shared_client: TestClient[Any, Any], body: Any, path: str
) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = await shared_client.post(path, data=data)
    assert resp.status == 400, await resp.text()


@settings(max_examples=1000, deadline=None)
@given(
    kind=st.sampled_from(list(GatedKind)),
    data=st.data(),
    operation=st.sampled_from(["CREATE", "UPDATE"]),
)
def test_flux_applies_are_never_denied_on_hold_grounds(
    kind: GatedKind, data: st.DataObject, operation: str
) -> None:
    """Mutate then validate: only a deliberate un-suspend may be denied by the hold rules."""
    name = "HelmRelease" if kind is GatedKind.HELM_RELEASE else "OCIRepository"
    incoming = data.draw(flux_objects(name))
    stored = data.draw(flux_objects(name)) if operation == "UPDATE" else None
    op: Literal["CREATE", "UPDATE"] = "CREATE" if operation == "CREATE" else "UPDATE"
    flux, alice = build_requester(FLUX, OPERATOR), build_requester("alice", OPERATOR)
    admission = parse_admission(kind, incoming, stored, op, flux)
    decision = evaluate(admission)
    mutation = build_mutation(admission, decision, incoming, NOW)
    final = jsonpatch.apply_patch(copy.deepcopy(incoming), list(mutation.patch))
    admitted = parse_admission(kind, final, stored, op, flux)
    after = evaluate(admitted)
    assert after.outcome == decision.outcome
    verdict = validate_gated_object(admitted, after)
    assert verdict.allowed or verdict.reason not in HOLD_GROUNDS, verdict.message
    assert mutation.action != "unsuspend"
    # the same request by a person: only a deliberate un-suspend is refused on hold grounds
    by_person = build_mutation(parse_admission(kind, incoming, stored, op, alice), decision,
                               incoming, NOW)
    mine = jsonpatch.apply_patch(copy.deepcopy(incoming), list(by_person.patch))
    admitted = parse_admission(kind, mine, stored, op, alice)
    person = validate_gated_object(admitted, evaluate(admitted))
    if not person.allowed and person.reason in HOLD_GROUNDS:
        assert by_person.action == "unsuspend", person.message
    if mutation.action == "hold":
        assert final["spec"]["suspend"] is True
        assert final["metadata"]["annotations"][ann.HELD] == decision.desired.identity.to_json()
        since = final["metadata"]["annotations"][ann.HELD_SINCE]
        kept = {o["metadata"]["annotations"].get(ann.HELD_SINCE) for o in (incoming, stored)
                if isinstance(o, dict) and isinstance(o.get("metadata"), dict)
                and isinstance(o["metadata"].get("annotations"), dict)}
        assert since == "2025-03-01T12:00:00Z" or since in kept
        assert dt.datetime.fromisoformat(since)
