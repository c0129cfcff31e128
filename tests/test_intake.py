"""The report endpoint over real HTTPS: who gets in, what is refused, what is ingested.

The server is :func:`fluxup.intake.serve_intake` on a free port with certificates from
:mod:`certs`; the client is httpx verifying that CA. The ingest is the real one
(:class:`~fluxup.intake.OperatorIntake`'s ``ingest``) on the in-memory cluster of
``tests.reconcile.world``; only the token check goes through the :class:`Intake`
protocol seam, because TokenReview and SubjectAccessReview need a real API server (see
``tests/integration/test_report_ingest.py`` for them on the sandbox).
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from certs.files import ensure_cert_files
from fluxup.adapters.kube import R
from fluxup.errors import KubeError, NotAuthenticatedError, NotAuthorizedError
from fluxup.intake import REPORT_PATH, OperatorIntake, build_intake_app, serve_intake
from fluxup.logic.report_access import Sender
from fluxup.logic.report_intake import ReportFormat
from fluxup.reconcile.renovate import ScanSummary
from tests.reconcile.world import APP, World
from webhook.tls import ReloadingTLS

URL = "http://git.example/org/fleet.git"
FILE = "apps/web/helmrelease.yaml"
GOOD, STRANGER, BROKEN = "good-token", "stranger-token", "apiserver-down"


def report(*versions: str, repository: str = "org/fleet", **dep: Any) -> dict[str, Any]:
    return {"repositories": {repository: {"packageFiles": {"flux": [{
        "packageFile": FILE,
        "deps": [{"depName": "web", "datasource": "helm", "currentValue": "1.0.0",
                  "currentVersion": "1.0.0", "registryUrls": ["http://charts.example/"],
                  "updates": [{"newValue": v, "newVersion": v, "updateType": "minor"}
                              for v in versions], **dep}],
    }]}}}}


@dataclass
class TableIntake:
    """Tokens decided by a table (the API server's part); ingest as the operator does."""

    world: World

    async def authorize(self, token: str) -> Sender:
        if token == BROKEN:
            raise KubeError("create tokenreviews: the API server could not be reached")
        if token == STRANGER:
            raise NotAuthorizedError("system:serviceaccount:x:y may not send Renovate reports")
        if token != GOOD:
            raise NotAuthenticatedError("the API server did not authenticate the token")
        return Sender("system:serviceaccount:ci:renovate")

    async def ingest(self, body: bytes, fmt: ReportFormat, repository: str | None,
                     sender: Sender) -> Sequence[ScanSummary]:
        return await OperatorIntake(self.world.ctx).ingest(body, fmt, repository, sender)


@dataclass
class Endpoint:
    world: World
    client: httpx.AsyncClient

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.world.get(R.MANAGEDAPP, APP)["status"]
        return status

    async def post(self, body: bytes | dict[str, Any], token: str | None = GOOD,
                   **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.client.post(REPORT_PATH, content=content, headers=headers,
                                      params=params)


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("intake-certs")
    ensure_cert_files(path, ["127.0.0.1", "localhost"])
    return path


@pytest.fixture
async def endpoint(cert_dir: Path) -> AsyncIterator[Endpoint]:
    world = World()
    world.seed()
    app = world.get(R.MANAGEDAPP, APP)
    app["status"]["git"] = {"repositoryUrl": URL, "file": FILE}
    app["status"]["helmRelease"]["chartName"] = "web"
    world.kube.put(R.MANAGEDAPP, app)
    files, _ = ensure_cert_files(cert_dir, ["127.0.0.1", "localhost"])
    tls = ReloadingTLS(files.cert, files.key)
    verify = ssl.create_default_context(cafile=str(files.ca_bundle))
    app = build_intake_app(TableIntake(world), max_bytes=64 * 1024)
    async with contextlib.AsyncExitStack() as stack:
        port = await stack.enter_async_context(serve_intake(app, "127.0.0.1", 0, tls))
        client = await stack.enter_async_context(httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{port}", verify=verify))
        yield Endpoint(world, client)


async def test_authorized_report_is_ingested(endpoint: Endpoint) -> None:
    response = await endpoint.post(report("1.1.0"))
    assert response.status_code == 200, response.text
    assert response.json() == {"repositories": [{
        "repository": "org/fleet", "apps": 1, "candidates": 1, "ok": True,
        "message": "report from system:serviceaccount:ci:renovate", "autoUpgrades": []}]}
    assert endpoint.status()["availableUpdate"]["version"] == "1.1.0"


async def test_local_report_needs_the_repository_and_log_format_works(
        endpoint: Endpoint) -> None:
    local = report("1.1.0", repository="local")
    response = await endpoint.post(local)
    assert response.status_code == 400
    assert "--platform=local" in response.json()["error"]
    assert "availableUpdates" not in endpoint.status()
    assert (await endpoint.post(local, repository=URL)).status_code == 200
    assert endpoint.status()["availableUpdate"]["version"] == "1.1.0"
    log = "\n".join(json.dumps(line) for line in (
        {"level": 20, "msg": "packageFiles with updates",
         "config": local["repositories"]["local"]["packageFiles"]},
        {"level": 30, "msg": "Repository finished", "result": None}))
    response = await endpoint.post(log.replace("1.1.0", "1.2.0").encode(), format="log",
                                   repository=URL)
    assert response.status_code == 200, response.text
    assert endpoint.status()["availableUpdate"]["version"] == "1.2.0"


@pytest.mark.parametrize(("token", "status", "says"), [
    (None, 401, "no credentials"),
    ("not-known", 401, "did not authenticate"),
    (STRANGER, 403, "may not send"),
    (BROKEN, 503, "could not be reviewed"),
])
async def test_refused_senders_change_nothing(endpoint: Endpoint, token: str | None,
                                              status: int, says: str) -> None:
    response = await endpoint.post(report("1.1.0"), token=token)
    assert response.status_code == status
    assert says in response.json()["error"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "availableUpdates" not in endpoint.status()


async def test_wrong_scheme_is_401(endpoint: Endpoint) -> None:
    response = await endpoint.client.post(REPORT_PATH, content=b"{}",
                                          headers={"Authorization": f"Basic {GOOD}"})
    assert response.status_code == 401


@pytest.mark.parametrize(("body", "params", "says"), [
    (b"{not json", {}, "not valid JSON"),
    (report("1.1.0", packageName=["x"]), {}, "packageName: expected a string"),
    ({"repositories": {"org/fleet": {"packageFiles": {"flux": [{
        "packageFile": "../../etc/passwd", "deps": []}]}}}}, {}, "leaves or does not name"),
    ({"repositories": {"org/fleet": {"packageFiles": {"npm": []}}}}, {}, "unknown manager"),
    (report("1.1.0;rm -rf"), {}, "not a chart version"),
    (report("1.1.0"), {"format": "yaml"}, "format must be"),
    (report("1.1.0"), {"repository": "org/../x"}, "not a Git URL"),
])
async def test_hostile_or_malformed_reports_are_400_and_change_nothing(
        endpoint: Endpoint, body: bytes | dict[str, Any], params: dict[str, str],
        says: str) -> None:
    await endpoint.post(report("1.0.5"))
    before = endpoint.status()
    response = await endpoint.post(body, **params)
    assert response.status_code == 400
    assert says in response.json()["error"]
    assert endpoint.status() == before


async def test_oversized_reports_are_413(endpoint: Endpoint) -> None:
    huge = json.dumps(report("1.1.0", currentValue="1" * 100_000)).encode()
    response = await endpoint.post(huge)
    assert response.status_code == 413
    assert "larger than 65536 bytes" in response.json()["error"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit still holds
        for start in range(0, len(huge), 8192):
            yield huge[start:start + 8192]

    response = await endpoint.client.post(REPORT_PATH, content=chunks(),
                                          headers={"Authorization": f"Bearer {GOOD}"})
    assert response.status_code == 413
    assert "availableUpdates" not in endpoint.status()


async def test_unauthenticated_huge_body_is_401_not_read(endpoint: Endpoint) -> None:
    response = await endpoint.post(b"x" * 200_000, token=None)
    assert response.status_code == 401


async def test_healthz_and_plain_http_refused(endpoint: Endpoint) -> None:
    assert (await endpoint.client.get("/healthz")).text == "ok"
    plain = str(endpoint.client.base_url).replace("https://", "http://")
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(plain + "/healthz")
