"""The inbox and ``/api/apps`` with many apps: pages, filters, bad query parameters, and
the per-identity list cache (who is answered from which lists, for how long).

The apiserver is an ``httpx.MockTransport`` that answers lists the way the real one does
and records every request with the identity it impersonates, so the tests see exactly
which person's request reached Kubernetes. RBAC itself is tested on the sandbox
(``tests/integration/test_ui_browser.py``).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet
from kubernetes_asyncio.client import Configuration

from fluxup.adapters.events import EventRecorder
from fluxup.adapters.impersonation import Impersonator
from fluxup.adapters.kube import KubeApi
from fluxup.ui.app import build_app
from fluxup.ui.keys import CODEC, INBOX_CACHE
from fluxup.ui.listcache import ListCache
from fluxup.ui.session import Session
from fluxup.ui.settings import UiSettings

APPS = 120  # 50 a page: 50, 50, 20
T0 = "2026-03-01T10:00:00Z"
Client = TestClient[web.Request, web.Application]


def managed_app(i: int) -> dict[str, Any]:
    name = f"app-{i:03d}"
    held = i % 10 == 0
    return {
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
        "metadata": {"name": name, "namespace": f"team-{i % 2}"},
        "spec": {"helmReleaseRef": {"name": name}},
        "status": {
            "currentVersion": "1.0.0",
            "availableUpdate": {"version": "1.1.0", "type": "minor"},
            "availableUpdates": [{"source": "chart", "name": name, "version": "1.1.0",
                                  "type": "minor", "currentVersion": "1.0.0"}],
            "chartSource": {"kind": "HelmRepository", "name": "charts", "namespace": "flux"},
            "conditions": [{"type": "Held", "status": "True", "reason": "NotApproved",
                            "message": "held", "lastTransitionTime": T0}] if held else []}}


class Apiserver:
    """Answers lists of ManagedApps (to ``oidc:alice`` only) and empty request lists;
    records (method, path, user, groups) of every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, tuple[str, ...]]] = []
        self.versions: list[tuple[str, str | None]] = []  # (path, resourceVersion asked)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        user = request.headers.get("Impersonate-User", "")
        groups = tuple(v for k, v in request.headers.multi_items()
                       if k.lower() == "impersonate-group")
        self.seen.append((request.method, request.url.path, user, groups))
        self.versions.append((request.url.path, request.url.params.get("resourceVersion")))
        if user != "oidc:alice":
            return httpx.Response(403, json={"message": f'User "{user}" cannot list'})
        if request.method != "GET":
            return httpx.Response(404, json={"message": "not found"})
        path = request.url.path
        one = re.fullmatch(r".*/namespaces/(team-\d)/managedapps/app-(\d+)", path)
        if one and int(one.group(2)) < APPS:
            return httpx.Response(200, json=managed_app(int(one.group(2))))
        if path.endswith("/managedapps"):
            ns = re.search(r"/namespaces/([^/]+)/", path)
            items = [managed_app(i) for i in range(APPS)]
            if ns:
                items = [a for a in items if a["metadata"]["namespace"] == ns.group(1)]
            return httpx.Response(200, json={"items": items})
        if path.endswith(("requests", "volumesnapshots")):
            return httpx.Response(200, json={"items": []})
        return httpx.Response(404, json={"message": f"{path} not found"})

    def lists_by(self, user: str) -> int:
        return sum(1 for m, p, u, _ in self.seen
                   if m == "GET" and u == user and p.endswith("/managedapps"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def apiserver() -> Apiserver:
    return Apiserver()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(apiserver: Apiserver, clock: Clock) -> AsyncIterator[Client]:
    settings = UiSettings(enabled=True, oidc_issuer="https://issuer.test", oidc_client_id="ui",
                          session_keys=(Fernet.generate_key(),),
                          public_url="http://127.0.0.1:8080")
    impersonator = Impersonator(Configuration(host="https://apiserver.test"),
                                transport=httpx.MockTransport(apiserver))
    app = build_app(settings, impersonator, EventRecorder(KubeApi(None)))  # type: ignore[arg-type]
    app[INBOX_CACHE] = ListCache(5, clock=clock)
    app.on_cleanup.append(lambda _: impersonator.aclose())
    async with TestClient(TestServer(app)) as tc:
        yield tc


def cookie(tc: Client, user: str = "oidc:alice", groups: tuple[str, ...] = ("oidc:team",),
           ) -> dict[str, str]:
    session = Session(user, groups, "tok", time.time() + 600)
    return {"Cookie": f"fluxup_session={tc.app[CODEC].seal_session(session)}"}


async def html(tc: Client, path: str, **kw: Any) -> str:
    resp = await tc.get(path, headers=kw.pop("headers", None) or cookie(tc))
    assert resp.status == kw.pop("status", 200), await resp.text()
    return await resp.text()


def rows(page: str) -> list[str]:
    return re.findall(r'data-app="([^"]+)"', page)


async def test_inbox_shows_one_page_of_apps_and_updates(client: Client) -> None:
    first = await html(client, "/")
    assert len(rows(first)) == 50
    assert "120 apps" in first
    assert "Apps 1\u201350 of 120 · page 1 of 3" in first
    assert 'rel="next" href="/?page=2"' in first
    assert "Updates 1\u201350 of 120" in first
    assert first.count('class="update"') == 50
    last = await html(client, "/?page=3")
    assert len(rows(last)) == 20
    assert 'rel="prev" href="/?page=2"' in last
    assert 'rel="next"' not in last.split("Apps 101")[1]
    assert (await html(client, "/?updates_page=3")).count('class="update"') == 20


async def test_lists_come_from_the_watch_cache_and_gets_are_consistent(
    client: Client, apiserver: Apiserver,
) -> None:
    """A person's views list with ``resourceVersion=0`` (no wait for the watch cache to
    catch up with etcd); reading one object before acting on it stays consistent."""
    await html(client, "/")
    await html(client, "/apps/team-0/app-000")
    lists = [v for p, v in apiserver.versions if not re.search(r"/app-\d+$", p)]
    gets = [v for p, v in apiserver.versions if re.search(r"/app-\d+$", p)]
    assert set(lists) == {"0"}
    assert set(gets) == {None}
    assert len(lists) >= 3  # the inbox's apps and requests, the app page's requests
    assert len(gets) >= 1


async def test_every_update_row_has_a_review_upgrade_button(client: Client) -> None:
    page = await html(client, "/")
    form = re.search(r'<form method="post" action="/apps/team-0/app-000/preview".*?</form>',
                     page, re.S)
    assert form is not None
    assert 'name="csrf_token" value="tok"' in form.group(0)
    assert 'name="version" value="1.1.0"' in form.group(0)
    assert 'aria-label="Review upgrade of team-0/app-000 to 1.1.0">Review upgrade<' in form.group(0)


async def test_page_past_the_end_is_empty_and_links_back(client: Client) -> None:
    page = await html(client, "/?page=9")
    assert rows(page) == []
    assert "Page 9 is past the end (3 pages)" in page
    assert 'href="/?page=3">Go to the last page' in page
    resp = await client.get("/api/apps?page=9", headers=cookie(client))
    body = await resp.json()
    assert (resp.status, body["items"], body["total"], body["pages"]) == (200, [], 120, 3)


async def test_api_pages_and_filters(client: Client) -> None:
    resp = await client.get("/api/apps?page=2&per_page=100", headers=cookie(client))
    body = await resp.json()
    assert (body["page"], body["perPage"], body["total"], body["pages"]) == (2, 100, 120, 2)
    assert len(body["items"]) == 20
    held = await (await client.get("/api/apps?state=Held", headers=cookie(client))).json()
    assert held["total"] == 12
    assert {r["state"] for r in held["items"]} == {"Held"}
    assert held["counts"]["Held"] == 12
    assert held["counts"]["UpdateAvailable"] == 108  # the totals label the filters
    team = await (await client.get("/api/apps?namespace=team-1&per_page=500",
                                   headers=cookie(client))).json()
    assert team["total"] == 60
    assert {r["namespace"] for r in team["items"]} == {"team-1"}
    inbox = await (await client.get("/api/inbox?page=3", headers=cookie(client))).json()
    assert (len(inbox["updates"]), inbox["total"], len(inbox["held"])) == (20, 120, 12)
    page = await html(client, "/?state=Held")
    assert len(rows(page)) == 12
    assert page.count('class="update"') == 12
    assert 'aria-current="true">Held (12)' in page


@pytest.mark.parametrize(("query", "message"), [
    ("page=abc", "?page= must be a whole number from 1 up, got 'abc'"),
    ("page=0", "?page= must be a whole number from 1 up"),
    ("page=-2", "?page= must be a whole number from 1 up"),
    ("updates_page=1.5", "?updates_page= must be a whole number"),
    ("per_page=1000", "?per_page= must be a whole number from 1 to 500"),
    ("state=Bogus", "?state= must be one of"),
    ("namespace=..%2Fkube-system", "?namespace= must be a namespace name"),
])
async def test_bad_query_is_a_clear_400_before_any_list(
        client: Client, apiserver: Apiserver, query: str, message: str) -> None:
    for path in ("/api/apps", "/api/inbox"):
        resp = await client.get(f"{path}?{query}", headers=cookie(client))
        assert resp.status == 400
        body = await resp.json()
        assert body["error"] == "invalid"
        assert message in body["message"]
    page = await html(client, f"/?{query}", status=400)
    assert message.replace("'", "&#39;") in page
    assert apiserver.seen == []


async def test_lists_are_reused_per_identity_for_a_few_seconds(
        client: Client, apiserver: Apiserver, clock: Clock) -> None:
    await html(client, "/")
    await html(client, "/?page=2")
    await client.get("/api/apps", headers=cookie(client))
    assert apiserver.lists_by("oidc:alice") == 1  # one list served three views
    clock.now += 5
    await html(client, "/")
    assert apiserver.lists_by("oidc:alice") == 2  # old entries are read again
    # other groups: another identity, its own list (RBAC may differ by group)
    await html(client, "/", headers=cookie(client, groups=("oidc:other",)))
    assert apiserver.lists_by("oidc:alice") == 3
    await html(client, "/?namespace=team-1")
    assert apiserver.lists_by("oidc:alice") == 4


async def test_nobody_is_answered_from_another_identitys_lists(
        client: Client, apiserver: Apiserver) -> None:
    await html(client, "/")  # alice's lists are cached
    for _ in range(2):  # bob is refused by "Kubernetes" each time: no leak, no cached 403
        resp = await client.get("/api/apps", headers=cookie(client, "oidc:bob"))
        assert resp.status == 403
        assert "oidc:bob" in (await resp.json())["message"]
    assert apiserver.lists_by("oidc:bob") == 2
    page = await html(client, "/", headers=cookie(client, "oidc:bob"), status=403)
    assert "app-000" not in page


async def test_a_write_drops_the_writers_cached_lists(
        client: Client, apiserver: Apiserver) -> None:
    await html(client, "/")
    resp = await client.post("/apps/team-0/app-000/preview",
                             data={"csrf_token": "tok", "version": "1.1.0"},
                             headers=cookie(client), allow_redirects=False)
    assert resp.status == 404  # this apiserver finds no app to upgrade; the point is after
    await html(client, "/")
    assert apiserver.lists_by("oidc:alice") == 2


async def test_app_page_reads_live(client: Client, apiserver: Apiserver) -> None:
    page = await html(client, "/apps/team-0/app-000")
    assert 'id="current-version"' in page
    assert "HelmRelease team-0/app-000 not found" in page
    await html(client, "/apps/team-0/app-000")
    gets = [p for m, p, u, _ in apiserver.seen if p.endswith("/managedapps/app-000")]
    assert len(gets) == 2  # never from the inbox's cache
    await html(client, "/apps/team-0/app-999", status=404)
