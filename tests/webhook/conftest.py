"""Fixtures for in-process tests of the webhook application (no cluster needed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from webhook.app import WebhookSettings, create_app

OPERATOR = "system:serviceaccount:fluxup-system:fluxup-operator"
NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)

GVK = {
    "HelmRelease": ("helm.toolkit.fluxcd.io", "HelmRelease"),
    "OCIRepository": ("source.toolkit.fluxcd.io", "OCIRepository"),
    "ManagedApp": ("fluxup.dev", "ManagedApp"),
    "UpgradeRequest": ("fluxup.dev", "UpgradeRequest"),
    "RollbackRequest": ("fluxup.dev", "RollbackRequest"),
}


def review_body(
    kind: str,
    obj: dict[str, Any] | None,
    old: dict[str, Any] | None = None,
    *,
    version: str = "v2",
    operation: str = "UPDATE",
    user: str = "system:serviceaccount:flux-system:kustomize-controller",
    uid: str = "uid-1",
    namespace: str = "apps",
    sub_resource: str | None = None,
) -> dict[str, Any]:
    group, kind_name = GVK.get(kind, ("example.com", kind))
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": kind_name},
        "resource": {"group": group, "version": version, "resource": kind_name.lower() + "s"},
        "namespace": namespace,
        "name": "my-app",
        "operation": operation,
        "userInfo": {"username": user, "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": False,
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def settings(**overrides: Any) -> WebhookSettings:
    return WebhookSettings(**{"operator_username": OPERATOR, **overrides})


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    app = await create_app(settings(), clock=lambda: NOW)
    async with TestClient(TestServer(app)) as c:
        yield c
