"""The webhook application over HTTP: routing, every served version, stages, metrics."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import jsonpatch
import pytest
from aiohttp.test_utils import TestClient, TestServer

from fluxup.api import annotations as ann
from fluxup.logic.identity import build_approval
from tests.webhook.conftest import NOW, OPERATOR, review_body, settings
from webhook.app import METRICS, READY, create_app

Client = TestClient[Any, Any]


#: What the gate writes for the fixture release at 12.5.0 (chart source included).
HELD_1250 = '{"chart":"12.5.0","source":"chart:app@/apps/"}'
#: The operator's approval of it, bound to the request it was given for.
APPROVED_1250 = build_approval(HELD_1250, "UpgradeRequest/apps/my-app-12-5-0")


def helm_release(version: str, *, history: str | None = None, **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "my-app", "namespace": "apps",
                     "labels": {ann.MANAGED_APP_LABEL: "my-app"}},
        "spec": {"chart": {"spec": {"chart": "app", "version": version}}, **spec},
    }
    if history:
        obj["status"] = {"history": [{"chartVersion": history}], "lastAppliedRevision": history}
    return obj


def oci_repository(tag: str, *, revision: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "my-app", "namespace": "apps",
                     "labels": {ann.MANAGED_APP_LABEL: "my-app"}},
        "spec": {"url": "oci://r/app", "ref": {"tag": tag}},
    }
    if revision:
        obj["status"] = {"artifact": {"revision": revision}}
    return obj


async def post(client: Client, path: str, body: Any) -> dict[str, Any]:
    resp = await client.post(path, json=body)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert doc["apiVersion"] == "admission.k8s.io/v1"
    assert doc["kind"] == "AdmissionReview"
    response: dict[str, Any] = doc["response"]
    assert response["uid"] == body["request"]["uid"]
    return response


def patched(obj: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    if "patch" not in response:
        return obj
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    result: dict[str, Any] = jsonpatch.apply_patch(copy.deepcopy(obj), ops)
    return result


@pytest.mark.parametrize("version", ["v2", "v2beta2", "v2beta1"])
async def test_helm_release_change_is_held_and_unsuspend_denied(
    client: Client, version: str
) -> None:
    old = helm_release("12.4.0", history="12.4.0")
    new = helm_release("12.5.0")
    body = review_body("HelmRelease", new, old, version=version)
    mutated = await post(client, "/mutate", body)
    assert mutated["allowed"] is True
    assert mutated["warnings"] == [
        "FluxUp holds my-app 12.5.0 until pre-upgrade snapshots are ready"
    ]
    final = patched(new, mutated)
    assert final["spec"]["suspend"] is True
    assert final["metadata"]["annotations"][ann.HELD] == HELD_1250
    assert final["metadata"]["annotations"][ann.HELD_SINCE] == "2025-03-01T12:00:00Z"

    validated = await post(client, "/validate", review_body("HelmRelease", final, old,
                                                            version=version))
    assert validated["allowed"] is True

    stored = dict(final, status=old["status"])
    unsuspend = copy.deepcopy(final)
    unsuspend["spec"]["suspend"] = False
    body = review_body("HelmRelease", unsuspend, stored, version=version, user="alice")
    mutated = await post(client, "/mutate", body)
    assert "patch" not in mutated
    denied = await post(client, "/validate", body)
    assert denied["allowed"] is False
    assert denied["status"]["code"] == 403
    assert "fluxup.dev/bypass" in denied["status"]["message"]


@pytest.mark.parametrize("version", ["v1", "v1beta2"])
async def test_oci_repository_tag_change_is_held(client: Client, version: str) -> None:
    old = oci_repository("1.0.0", revision="1.0.0@sha256:aa")
    new = oci_repository("1.1.0")
    mutated = await post(client, "/mutate", review_body("OCIRepository", new, old,
                                                        version=version))
    final = patched(new, mutated)
    assert final["spec"]["suspend"] is True
    assert mutated["warnings"] == [
        "FluxUp holds my-app 1.1.0 until pre-upgrade snapshots are ready"
    ]


async def test_unchanged_and_approved_pass_without_patch(client: Client) -> None:
    old = helm_release("12.4.0", history="12.4.0")
    response = await post(client, "/mutate", review_body("HelmRelease", helm_release("12.4.0"),
                                                         old))
    assert response["allowed"] is True
    assert "patch" not in response
    assert "warnings" not in response
    approved = helm_release("12.5.0")
    approved["metadata"]["annotations"] = {ann.APPROVED: APPROVED_1250}
    response = await post(client, "/mutate", review_body("HelmRelease", approved, old,
                                                         user=OPERATOR))
    assert "patch" not in response


async def test_operator_only_annotation_denied_for_others(client: Client) -> None:
    old = helm_release("12.4.0", history="12.4.0")
    new = helm_release("12.4.0")
    new["metadata"]["annotations"] = {ann.APPROVED: APPROVED_1250}
    denied = await post(client, "/validate", review_body("HelmRelease", new, old, user="bob"))
    assert denied["allowed"] is False
    assert "only FluxUp" in denied["status"]["message"]
    allowed = await post(client, "/validate", review_body("HelmRelease", new, old, user=OPERATOR))
    assert allowed["allowed"] is True


async def test_fluxup_objects_validated(client: Client) -> None:
    app = {"metadata": {"name": "a", "namespace": "apps"},
           "spec": {"helmReleaseRef": {"name": "a", "namespace": "elsewhere"}}}
    denied = await post(client, "/validate", review_body("ManagedApp", app, None,
                                                         version="v1alpha1", operation="CREATE"))
    assert denied["allowed"] is False
    assert "allow_cross_namespace_refs" in denied["status"]["message"]
    mutate = await post(client, "/mutate", review_body("ManagedApp", app, None,
                                                       version="v1alpha1", operation="CREATE"))
    assert mutate["allowed"] is True


async def test_cross_namespace_setting_allows() -> None:
    app = await create_app(settings(allow_cross_namespace_refs=True), clock=lambda: NOW)
    async with TestClient(TestServer(app)) as c:
        obj = {"spec": {"helmReleaseRef": {"name": "a", "namespace": "elsewhere"}}}
        response = await post(c, "/validate", review_body("ManagedApp", obj, None,
                                                          version="v1alpha1"))
        assert response["allowed"] is True


@pytest.mark.parametrize(
    "body",
    [
        review_body("HelmRelease", helm_release("12.5.0"), helm_release("1.0.0", history="1.0.0"),
                    operation="DELETE"),
        review_body("HelmRelease", helm_release("12.5.0"), helm_release("1.0.0", history="1.0.0"),
                    sub_resource="status"),
        review_body("Deployment", {"spec": {}}, None),
    ],
    ids=["delete", "status-subresource", "unknown-kind"],
)
async def test_not_gated_requests_pass(client: Client, body: dict[str, Any]) -> None:
    for path in ("/mutate", "/validate"):
        response = await post(client, path, body)
        assert response["allowed"] is True
        assert "patch" not in response


async def test_gated_request_without_object_is_refused_not_crashed(client: Client) -> None:
    response = await post(client, "/mutate", review_body("HelmRelease", None, None,
                                                         operation="CREATE"))
    assert response["allowed"] is False
    assert response["status"]["code"] == 400


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"apiVersion": "admission.k8s.io/v1beta1", "kind":'
     b' "AdmissionReview", "request": {}}', b'{"apiVersion": "admission.k8s.io/v1", "kind":'
     b' "AdmissionReview", "request": {"uid": ""}}'],
)
async def test_malformed_bodies_get_400(client: Client, body: bytes) -> None:
    resp = await client.post("/mutate", data=body)
    assert resp.status == 400
    assert "error" in await resp.json()


async def test_health_readiness_and_metrics(client: Client) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await post(client, "/mutate", review_body("HelmRelease", helm_release("12.5.0"),
                                              helm_release("12.4.0", history="12.4.0")))
    await client.post("/validate", data=b"junk")
    resp = await client.get("/metrics")
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await resp.text()
    assert 'fluxup_webhook_requests_total{path="/mutate",kind="HelmRelease",decision="hold"} 1' \
        in text
    assert 'fluxup_webhook_requests_total{path="/validate",kind="unknown",decision="malformed"} 1'\
        in text
    assert client.app is not None
    assert client.app[METRICS].count(path="/mutate") == 1


async def test_not_ready_after_shutdown() -> None:
    app = await create_app(settings(), clock=lambda: NOW)
    async with TestClient(TestServer(app)) as c:
        assert (await c.get("/readyz")).status == 200
    assert app[READY].ready is False


@pytest.mark.parametrize("via", ["serviceaccount", "field-manager"])
async def test_flux_applying_suspend_false_from_git_is_held_not_denied(
    client: Client, via: str
) -> None:
    old = helm_release("12.4.0", history="12.4.0")
    held = patched(helm_release("12.5.0"), await post(
        client, "/mutate", review_body("HelmRelease", helm_release("12.5.0"), old)))
    stored = dict(held, status=old["status"])
    git = helm_release("12.5.0", suspend=False)  # the manifest in Git says so
    body = review_body("HelmRelease", git, stored,
                       user="system:serviceaccount:flux-system:kustomize-controller"
                       if via == "serviceaccount" else "kubernetes-admin")
    if via == "field-manager":
        body["request"]["options"] = {"kind": "PatchOptions", "fieldManager":
                                      "kustomize-controller", "force": True}
    mutated = await post(client, "/mutate", body)
    final = patched(git, mutated)
    assert final["spec"]["suspend"] is True
    assert final["metadata"]["annotations"][ann.HELD] == HELD_1250
    body["request"]["object"] = final
    validated = await post(client, "/validate", body)
    assert validated["allowed"] is True
