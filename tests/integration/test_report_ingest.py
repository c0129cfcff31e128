"""The report intake against the real API server: TokenReview, SubjectAccessReview, RBAC.

The operator side runs in the test process as the ``fluxup-operator`` ServiceAccount
(a real token from the TokenRequest API) with exactly the shipped RBAC
(``manifests/operator/rbac.yaml``): the HTTPS endpoint (:mod:`fluxup.intake`) is served
on a free port and called with httpx; senders are real ServiceAccounts, one bound to the
shipped ``fluxup-report-sender`` ClusterRole, one not. The labelled-ConfigMap route runs
one pass (:func:`~fluxup.reconcile.report_ingest.ingest_configmaps`) under the operator's
Role in its namespace. The last test switches the endpoint on in the session's real
operator process (``fluxup operator``) and posts to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes_asyncio import client

from certs.files import ensure_cert_files
from fluxup.adapters.events import EventRecorder
from fluxup.adapters.kube import KubeApi
from fluxup.api.managedapp import GitSource
from fluxup.intake import REPORT_PATH, OperatorIntake, build_intake_app, serve_intake
from fluxup.logic.report_intake import (
    DIGEST_ANNOTATION,
    REPORT_KEY,
    REPORT_LABEL,
    REPOSITORY_ANNOTATION,
    RESULT_ANNOTATION,
)
from fluxup.reconcile.context import Context
from fluxup.reconcile.report_ingest import ingest_configmaps
from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.processes import free_port
from fluxup.sandbox.stack import Stack
from fluxup.settings import Settings
from webhook.tls import ReloadingTLS

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parents[2]
FILE = "apps/web/helmrelease.yaml"
AUDIENCE = "fluxup-reports"


def report(version: str, repository: str = "local") -> dict[str, Any]:
    return {"repositories": {repository: {"packageFiles": {"flux": [{
        "packageFile": FILE,
        "deps": [{"depName": "web", "datasource": "helm", "currentValue": "1.0.0",
                  "currentVersion": "1.0.0", "registryUrls": ["http://charts.example/"],
                  "updates": [{"newValue": version, "newVersion": version,
                               "updateType": "minor"}]}],
    }]}}}}


@dataclass
class Senders:
    namespace: str
    url: str  # the Git URL of this test's ManagedApp (unique: no other app matches)

    def token(self, sandbox: Sandbox, account: str, *extra: str) -> str:
        return sandbox.kubectl("create", "token", account, "-n", self.namespace,
                               "--duration=10m", *extra).stdout.strip()


@pytest.fixture(scope="module")
def senders(sandbox: Sandbox, fluxup_crds: list[Path],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Senders]:
    """FluxUp's namespace and operator RBAC; a ManagedApp; an allowed and a stranger
    ServiceAccount."""
    sandbox.kubectl("apply", "--server-side", "--field-manager=fluxup-sandbox",
                    f"--filename={REPO / 'manifests/base/namespace.yaml'}",
                    f"--filename={REPO / 'manifests/operator/rbac.yaml'}")
    suffix = secrets.token_hex(3)
    namespace, binding = f"t-report-{suffix}", f"fluxup-report-sender-{suffix}"
    url = f"http://git.example/org/fleet-{suffix}.git"
    sandbox.kubectl("create", "namespace", namespace)
    for account in ("sender", "stranger"):
        sandbox.kubectl("create", "serviceaccount", account, "-n", namespace)
    sandbox.kubectl("create", "clusterrolebinding", binding,
                    "--clusterrole=fluxup-report-sender",
                    f"--serviceaccount={namespace}:sender")
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
        "metadata": {"name": "web"}, "spec": {"helmReleaseRef": {"name": "web"}}}))
    status = {"git": {"repositoryUrl": url, "file": FILE},
              "helmRelease": {"apiVersion": "helm.toolkit.fluxcd.io/v2", "name": "web",
                              "namespace": namespace, "chartName": "web"},
              "currentVersion": "1.0.0"}
    sandbox.kubectl("patch", "managedapps", "web", "-n", namespace, "--subresource=status",
                    "--type=merge", "-p", json.dumps({"status": status}))
    yield Senders(namespace, url)
    sandbox.kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found",
                    check=False)
    sandbox.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


async def _operator_kube(sandbox: Sandbox) -> tuple[KubeApi, client.ApiClient]:
    token = sandbox.kubectl("create", "token", "fluxup-operator", "-n", "fluxup-system",
                            "--duration=10m").stdout.strip()
    configuration = client.Configuration(host=sandbox.server)
    configuration.ssl_ca_cert = str(sandbox.pki.ca_crt)
    configuration.api_key = {"BearerToken": f"Bearer {token}"}
    api = client.ApiClient(configuration)
    return KubeApi(api), api


async def _no_git(source: GitSource, namespace: str) -> Any:
    raise AssertionError("the intake opens no Git repository")


@dataclass
class Operator:
    sandbox: Sandbox
    ctx: Context
    client: httpx.AsyncClient

    async def post(self, body: dict[str, Any], token: str | None, **params: str
                   ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.post(REPORT_PATH, content=json.dumps(body).encode(),
                                      headers=headers, params=params)


@contextlib.asynccontextmanager
async def _operator(sandbox: Sandbox, certs: Path, **settings: Any
                    ) -> AsyncIterator[Operator]:
    kube, api = await _operator_kube(sandbox)
    ctx = Context(kube=kube, settings=Settings(namespace="fluxup-system", **settings),
                  open_git=_no_git, events=EventRecorder(kube))
    files, _ = ensure_cert_files(certs, ["127.0.0.1", "localhost"])
    tls = ReloadingTLS(files.cert, files.key)
    verify = ssl.create_default_context(cafile=str(files.ca_bundle))
    try:
        async with contextlib.AsyncExitStack() as stack:
            port = await stack.enter_async_context(serve_intake(
                build_intake_app(OperatorIntake(ctx)), "127.0.0.1", 0, tls))
            http = await stack.enter_async_context(httpx.AsyncClient(
                base_url=f"https://127.0.0.1:{port}", verify=verify, timeout=30))
            yield Operator(sandbox, ctx, http)
    finally:
        await api.close()


def _app(sandbox: Sandbox, senders: Senders) -> dict[str, Any]:
    obj = sandbox.get_json("managedapps", "web", "-n", senders.namespace)
    assert obj is not None
    return obj


async def test_token_review_and_access_review_decide_who_may_send(
        sandbox: Sandbox, senders: Senders, tmp_path: Path) -> None:
    async with _operator(sandbox, tmp_path) as operator:
        stranger = senders.token(sandbox, "stranger")
        response = await operator.post(report("1.1.0"), stranger, repository=senders.url)
        assert response.status_code == 403, response.text
        assert (f"system:serviceaccount:{senders.namespace}:stranger may not send"
                in response.json()["error"])
        assert "availableUpdates" not in _app(sandbox, senders)["status"]

        forged = senders.token(sandbox, "sender")[:-4] + "AAAA"  # signature broken
        response = await operator.post(report("1.1.0"), forged, repository=senders.url)
        assert response.status_code == 401, response.text
        assert "did not authenticate the token" in response.json()["error"]
        assert (await operator.post(report("1.1.0"), None)).status_code == 401

        sender = senders.token(sandbox, "sender")
        response = await operator.post(report("1.1.0"), sender, repository=senders.url)
        assert response.status_code == 200, response.text
        (summary,) = response.json()["repositories"]
        assert (summary["apps"], summary["candidates"]) == (1, 1)
        assert _app(sandbox, senders)["status"]["availableUpdate"]["version"] == "1.1.0"

        hostile = report("1.2.0")
        hostile["repositories"]["local"]["packageFiles"]["flux"][0]["packageFile"] = "../x"
        response = await operator.post(hostile, sender, repository=senders.url)
        assert response.status_code == 400
        assert _app(sandbox, senders)["status"]["availableUpdate"]["version"] == "1.1.0"


async def test_tokens_must_be_meant_for_fluxup_when_audiences_are_set(
        sandbox: Sandbox, senders: Senders, tmp_path: Path) -> None:
    async with _operator(sandbox, tmp_path, report_audiences=(AUDIENCE,)) as operator:
        plain = senders.token(sandbox, "sender")
        response = await operator.post(report("1.3.0"), plain, repository=senders.url)
        assert response.status_code == 401, response.text
        bound = senders.token(sandbox, "sender", f"--audience={AUDIENCE}")
        response = await operator.post(report("1.3.0"), bound, repository=senders.url)
        assert response.status_code == 200, response.text
        assert _app(sandbox, senders)["status"]["availableUpdate"]["version"] == "1.3.0"


async def test_labelled_configmap_is_ingested_once_under_the_operators_role(
        sandbox: Sandbox, senders: Senders, tmp_path: Path) -> None:
    name = f"renovate-{secrets.token_hex(3)}"
    sandbox.kubectl("apply", "-n", "fluxup-system", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {REPORT_LABEL: "true"},
                     "annotations": {REPOSITORY_ANNOTATION: senders.url}},
        "data": {REPORT_KEY: json.dumps(report("1.4.0"))}}))
    try:
        async with _operator(sandbox, tmp_path) as operator:
            # an operator of the session's stack (same ServiceAccount, same Role) may take
            # it first: either way it is ingested exactly once
            deadline = time.monotonic() + 60
            while True:
                await ingest_configmaps(operator.ctx)
                cm = sandbox.get_json("configmap", name, "-n", "fluxup-system")
                assert cm is not None
                notes = cm["metadata"]["annotations"]
                if DIGEST_ANNOTATION in notes:
                    break
                assert time.monotonic() < deadline, "the ConfigMap was never ingested"
                await asyncio.sleep(0.5)
            assert _app(sandbox, senders)["status"]["availableUpdate"]["version"] == "1.4.0"
            assert notes[RESULT_ANNOTATION].startswith(f"ingested {senders.url}: 1 app(s)")
            assert len(notes[DIGEST_ANNOTATION]) == 64
            assert not [line for line in await ingest_configmaps(operator.ctx)
                        if name in line]
            events = sandbox.get_json("events", "-n", "fluxup-system",
                                      f"--field-selector=involvedObject.name={name}")
            assert events is not None
            assert [e["reason"] for e in events["items"]] == ["ReportIngested"]
    finally:
        sandbox.kubectl("delete", "configmap", name, "-n", "fluxup-system",
                        "--ignore-not-found", check=False)


async def test_the_operator_process_serves_reports_and_reads_configmaps(
        sandbox: Sandbox, senders: Senders, stack: Stack, tmp_path: Path) -> None:
    """`fluxup operator` itself (the session's stack, as its ServiceAccount) with the
    endpoint switched on: HTTPS, token and RBAC checks, and the ConfigMap poll."""
    files, _ = ensure_cert_files(tmp_path / "certs", ["127.0.0.1", "localhost"])
    port = free_port()
    settings: dict[str, str | None] = {
        "FLUXUP_REPORT_ADDRESS": f"127.0.0.1:{port}",
        "FLUXUP_REPORT_CERT_FILE": str(files.cert),
        "FLUXUP_REPORT_KEY_FILE": str(files.key),
        "FLUXUP_REPORT_CONFIGMAP_INTERVAL_SECONDS": "1",
    }
    name = f"renovate-{secrets.token_hex(3)}"
    verify = ssl.create_default_context(cafile=str(files.ca_bundle))
    stack.restart_operator(settings)
    try:
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", verify=verify,
                                     timeout=30) as http:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if (await http.get("/healthz")).text == "ok":
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, stack.operator_log_tail()
                await asyncio.sleep(0.5)
            headers = {"Authorization": f"Bearer {senders.token(sandbox, 'stranger')}"}
            response = await http.post(REPORT_PATH, json=report("1.5.0"), headers=headers,
                                       params={"repository": senders.url})
            assert response.status_code == 403, response.text
            headers = {"Authorization": f"Bearer {senders.token(sandbox, 'sender')}"}
            response = await http.post(REPORT_PATH, json=report("1.5.0"), headers=headers,
                                       params={"repository": senders.url})
            assert response.status_code == 200, response.text
            assert _app(sandbox, senders)["status"]["availableUpdate"]["version"] == "1.5.0"
        sandbox.kubectl("apply", "-n", "fluxup-system", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {REPORT_LABEL: "true"},
                         "annotations": {REPOSITORY_ANNOTATION: senders.url}},
            "data": {REPORT_KEY: json.dumps(report("1.6.0"))}}))
        deadline = time.monotonic() + 60
        while _app(sandbox, senders)["status"]["availableUpdate"]["version"] != "1.6.0":
            assert time.monotonic() < deadline, stack.operator_log_tail()
            await asyncio.sleep(0.5)
    finally:
        sandbox.kubectl("delete", "configmap", name, "-n", "fluxup-system",
                        "--ignore-not-found", check=False)
        stack.restart_operator(dict.fromkeys(settings))
