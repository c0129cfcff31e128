"""What the operator's ServiceAccount learns from the real apiserver's discovery: the
kinds each apiVersion serves, which the "API versions served" preflight relies on."""

from __future__ import annotations

import pytest

from fluxup.sandbox.stack import Stack
from tests.integration.test_report_ingest import _operator_kube

pytestmark = [pytest.mark.sandbox]


async def test_served_kinds_as_the_operator(stack: Stack) -> None:
    kube, api = await _operator_kube(stack.sandbox)
    async with api:
        flux = await kube.served_kinds("helm.toolkit.fluxcd.io/v2")
        assert flux is not None
        assert "HelmRelease" in flux
        core = await kube.served_kinds("v1")
        assert core is not None
        assert {"ConfigMap", "Secret"} <= core
        assert "ConfigMap/status" not in core
        assert all("/" not in k for k in core)
        assert await kube.served_kinds("helm.toolkit.fluxcd.io/v9") is None
        assert await kube.served_kinds("fluxup.dev/v1alpha1") == frozenset(
            {"ManagedApp", "UpgradeRequest", "RollbackRequest"})
        # not an apiVersion: never turned into some other request path
        assert await kube.served_kinds("../api/v1/namespaces/default/secrets") is None
