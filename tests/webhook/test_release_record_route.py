"""``/validate-release-record``: line 2's route, in process (the e2e test uses the real
apiserver, helm-controller and the ManagedApp lookup)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from fluxup.logic.release_record import ReleaseGate, ReleaseIdentity, build_release_key
from tests.logic.test_release_record import IMAGE, V1, helm_record
from tests.webhook.conftest import review_body, settings
from webhook.app import create_app
from webhook.release_gates import GateStateUnavailable


class MemoryReleaseGates:
    """In-memory stand-in for the ManagedApp lookup: unit tests have no apiserver."""

    def __init__(self, gates: dict[str, list[ReleaseGate]] | None = None,
                 fail: bool = False) -> None:
        self.gates, self.fail = gates or {}, fail
        self.asked: list[str] = []

    async def gates_for(self, release_key: str) -> list[ReleaseGate]:
        self.asked.append(release_key)
        if self.fail:
            raise GateStateUnavailable("listing ManagedApps failed: 403 Forbidden")
        return self.gates.get(release_key, [])


def secret(record: str, owner: str = "helm") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "sh.helm.release.v1.web.v3", "namespace": "apps",
                         "labels": {"owner": owner, "name": "web", "version": "3"}},
            "type": "helm.sh/release.v1", "data": {"release": record}}


async def post(gates: MemoryReleaseGates, obj: dict[str, Any]) -> dict[str, Any]:
    app = await create_app(settings(), release_gates=gates)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        body = review_body("Secret", obj, operation="CREATE",
                           user="system:serviceaccount:flux-system:helm-controller")
        body["request"]["kind"] = {"group": "", "version": "v1", "kind": "Secret"}
        resp = await client.post("/validate-release-record", json=body)
        assert resp.status == 200
        return dict((await resp.json())["response"])


KEY = build_release_key("apps", "web")
MANAGED = {KEY: [ReleaseGate("apps/web", "apps", "web", IMAGE, (V1,))]}


async def test_a_new_identity_of_a_managed_release_is_denied() -> None:
    gates = MemoryReleaseGates(MANAGED)
    response = await post(gates, secret(helm_record(tag="2.0")))
    assert response["allowed"] is False
    assert "fluxup-hold=" in response["status"]["message"]
    assert gates.asked == [KEY]


async def test_the_deployed_identity_and_unmanaged_releases_pass() -> None:
    assert (await post(MemoryReleaseGates(MANAGED), secret(helm_record())))["allowed"]
    assert (await post(MemoryReleaseGates({}), secret(helm_record("9.0.0"))))["allowed"]


async def test_secrets_that_are_not_helm_records_are_not_looked_up() -> None:
    gates = MemoryReleaseGates(MANAGED)
    assert (await post(gates, secret(helm_record("9.0.0"), owner="someone")))["allowed"]
    assert gates.asked == []


async def test_fails_closed_when_managed_apps_cannot_be_read() -> None:
    response = await post(MemoryReleaseGates(fail=True), secret(helm_record()))
    assert response["allowed"] is False
    assert "403 Forbidden" in response["status"]["message"]


async def test_approved_identity_passes() -> None:
    new = ReleaseIdentity(V1.chart, "1.0.0", (*V1.images[:3], ("image.tag", "2.0")))
    gates = MemoryReleaseGates({KEY: [ReleaseGate("apps/web", "apps", "web", IMAGE, (V1,), new)]})
    assert (await post(gates, secret(helm_record(tag="2.0"))))["allowed"]
