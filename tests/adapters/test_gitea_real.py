"""GiteaBackend against a real Gitea server (built by ``make build``; no Kubernetes).

One throw-away Gitea (:func:`fluxup.sandbox.gitea.start_gitea`) serves the whole module;
each test gets its own repository, owned by the admin and seeded with a real ``git push``.
FluxUp acts as a separate, non-admin user ``fluxup`` with write access to it and a token
scoped ``write:repository``. The server's pages are made small (commits: 20, tree
entries: 3) so that paging is exercised as on a big repository.

"A human" pushes with ``git`` from a local clone; :class:`RaceTransport` (the real HTTP
transport plus a hook) lets a test push in the very moment between FluxUp's reads and its
``POST /contents``, so every lost race is a real one that Gitea itself detects. What
landed is always checked in a fresh ``git clone``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from fluxup.adapters.git import GitBackend, GiteaBackend, Identity
from fluxup.errors import (
    GitAuthError,
    GitConflictError,
    GitError,
    GitNotFoundError,
    PushRejectedError,
)
from fluxup.sandbox.gitea import GiteaServer, start_gitea
from fluxup.sandbox.processes import wait_until

RELEASE = 'kind: HelmRelease\nspec:\n  chart:\n    spec:\n      version: "18.1.0"\n'
UPGRADE = RELEASE.replace("18.1.0", "18.2.0")
VALUES = "replicas: 1\nimage:\n  tag: 7.2.4\n"
VALUES_UP = VALUES.replace("7.2.4", "7.4.0")
MESSAGE = (
    "chore(deps): update redis to 18.2.0\n\nManaged-By: fluxup\nUpgrade-Request: apps/up-1\n"
)
AUTHOR = Identity("FluxUp Bot", "fluxup-bot@example.invalid")
SEED = {
    "apps/redis/release.yaml": RELEASE,
    "apps/redis/values.yaml": VALUES,
    "apps/web/deploy.yaml": "kind: Deployment\n",
    "clusters/home/kustomization.yaml": "resources: []\n",
    "README.md": "fleet\n",
}
FLUXUP_USER = "fluxup"


def git(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0",
               GIT_AUTHOR_NAME="Human", GIT_AUTHOR_EMAIL="human@example.invalid",
               GIT_COMMITTER_NAME="Human", GIT_COMMITTER_EMAIL="human@example.invalid")
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, f"git {args[0]}: {proc.stderr}"
    return proc.stdout


@dataclass
class Forge:
    """The running server, seen by its admin (REST) and by FluxUp's user."""

    server: GiteaServer
    fluxup_token: str
    read_only_token: str
    work: Path

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method, self.server.api + path, timeout=30, **kwargs,
            headers={"Authorization": f"token {self.server.admin_token}"},
        )
        assert response.status_code < 300, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    def branch_head(self, repo: str) -> str | None:
        response = httpx.get(
            f"{self.server.api}/repos/{self.server.admin}/{repo}/branches/main", timeout=30,
            headers={"Authorization": f"token {self.server.admin_token}"})
        return str(response.json()["commit"]["id"]) if response.status_code == 200 else None

    def clone_url(self, repo: str) -> str:
        s = self.server
        return f"{s.url.replace('://', f'://{s.admin}:{s.admin_password}@')}/{s.admin}/{repo}.git"


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forge]:
    base = tmp_path_factory.mktemp("gitea")
    server = start_gitea(
        base / "srv", secrets.token_hex(6), base / "logs",
        settings={"git": {"COMMITS_RANGE_SIZE": "20"},
                  "api": {"DEFAULT_GIT_TREES_PER_PAGE": "3"}},
    )
    try:
        password = secrets.token_urlsafe(12)
        forge = Forge(server, "", "", base)
        forge.api("POST", "/admin/users", json={
            "username": FLUXUP_USER, "email": "fluxup@example.invalid", "password": password,
            "must_change_password": False,
        })

        def token(name: str, scopes: list[str]) -> str:
            response = httpx.post(f"{server.api}/users/{FLUXUP_USER}/tokens",
                                  auth=(FLUXUP_USER, password), timeout=30,
                                  json={"name": name, "scopes": scopes})
            assert response.status_code == 201, response.text
            return str(response.json()["sha1"])

        forge.fluxup_token = token("fluxup", ["write:repository"])
        forge.read_only_token = token("read-only", ["read:repository"])
        yield forge
    finally:
        assert server.stop()


class RaceTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport; ``before_write`` actions run (one per request) right
    before FluxUp's ``POST /contents`` reaches Gitea, i.e. after FluxUp read the head."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.before_write: list[Callable[[], object]] = []
        self.writes = 0
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "POST" and request.url.path.endswith("/contents"):
            self.writes += 1
            if self.before_write:
                await asyncio.to_thread(self.before_write.pop(0))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Repo:
    """One repository on the server with a human's working clone of it."""

    forge: Forge
    name: str
    clone: Path
    transport: RaceTransport = field(default_factory=RaceTransport)  # the last backend's
    backends: list[GiteaBackend] = field(default_factory=list)

    def push(self, changes: dict[str, str | None], message: str = "human edit") -> str:
        """Commit ``changes`` (None deletes) as the human on the newest main; push."""
        git("fetch", "-q", "origin", cwd=self.clone)
        git("reset", "-q", "--hard", "origin/main", cwd=self.clone)
        for path, text in changes.items():
            file = self.clone / path
            if text is None:
                file.unlink()
            else:
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(text)
        git("add", "-A", cwd=self.clone)
        git("commit", "-q", "-m", message, cwd=self.clone)
        git("push", "-q", "origin", "HEAD:main", cwd=self.clone)
        return git("rev-parse", "HEAD", cwd=self.clone).strip()

    def fresh_clone(self) -> Path:
        """A new clone of main, to check what really landed."""
        target = self.forge.work / f"check-{self.name}-{secrets.token_hex(3)}"
        git("clone", "-q", self.forge.clone_url(self.name), str(target), cwd=self.forge.work)
        return target

    def backend(self, token: str | None = None, push_attempts: int = 5) -> GiteaBackend:
        server = self.forge.server
        self.transport = RaceTransport()
        backend = GiteaBackend(
            base_url=server.url, owner=server.admin, repo=self.name, branch="main",
            token=self.forge.fluxup_token if token is None else token, author=AUTHOR,
            push_attempts=push_attempts, transport=self.transport,
        )
        self.backends.append(backend)  # closed by the fixture, even when a test fails
        return backend


@pytest.fixture
async def repo(forge: Forge, request: pytest.FixtureRequest) -> AsyncIterator[Repo]:
    name = f"fleet-{request.node.name.removeprefix('test_')[:40]}-{secrets.token_hex(2)}"
    name = name.replace("_", "-")
    forge.api("POST", "/user/repos", json={"name": name, "private": True,
                                           "default_branch": "main"})
    forge.api("PUT", f"/repos/{forge.server.admin}/{name}/collaborators/{FLUXUP_USER}",
              json={"permission": "write"})
    clone = forge.work / f"human-{name}"
    clone.mkdir()
    git("init", "-q", "-b", "main", cwd=clone)
    git("remote", "add", "origin", forge.clone_url(name), cwd=clone)
    for path, text in SEED.items():
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        (clone / path).write_text(text)
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "initial", cwd=clone)
    git("push", "-q", "origin", "main", cwd=clone)
    # Gitea processes the first push into an empty repository in the background (until
    # then the branch API answers 500): wait until it serves the pushed head
    pushed = git("rev-parse", "HEAD", cwd=clone).strip()
    wait_until(f"Gitea to serve {name}'s first push",
               lambda: forge.branch_head(name) == pushed, 30, interval=0.1)
    made = Repo(forge, name, clone)
    yield made
    for backend in made.backends:
        await backend.aclose()


def show(clone: Path, ref: str, fmt: str) -> str:
    return git("show", "-s", f"--format={fmt}", ref, cwd=clone)


def changed_files(clone: Path, ref: str) -> dict[str, str]:
    out = git("show", "--format=", "--name-status", ref, cwd=clone)
    return {line.split("\t")[1]: line.split("\t")[0] for line in out.splitlines() if line}


# --------------------------------------------------------------------------- tests


async def test_reads_and_lists_with_paging(repo: Repo) -> None:
    backend = repo.backend()
    assert isinstance(backend, GitBackend)
    first = await backend.head()
    assert first == git("rev-parse", "HEAD", cwd=repo.clone).strip()
    content = await backend.read_file("apps/redis/release.yaml")
    blob = git("rev-parse", "HEAD:apps/redis/release.yaml", cwd=repo.clone).strip()
    assert (content.text, content.sha, content.commit) == (RELEASE, blob, first)
    # 5 files in 5 directories, 3 tree entries a page: the listing follows "truncated"
    assert await backend.list_files() == sorted(SEED)
    assert await backend.list_files("apps/redis/") == [
        "apps/redis/release.yaml", "apps/redis/values.yaml"]
    later = repo.push({"apps/web/deploy.yaml": "kind: Changed\n"})
    assert (await backend.read_file("apps/web/deploy.yaml", ref=first)).text == (
        "kind: Deployment\n")
    assert (await backend.read_file("apps/web/deploy.yaml", ref="main")).commit == later
    with pytest.raises(GitNotFoundError, match=r"apps/none\.yaml does not exist"):
        await backend.read_file("apps/none.yaml")
    with pytest.raises(GitError, match="not a file"):
        await backend.read_file("apps/web")
    token = repo.forge.fluxup_token
    assert all(r.headers["Authorization"] == f"token {token}"
               for r in repo.transport.requests)
    assert all(token not in str(r.url) for r in repo.transport.requests)


async def test_multi_file_bump_is_one_commit_with_fluxups_identity(repo: Repo) -> None:
    backend = repo.backend()
    read = await backend.read_file("apps/redis/release.yaml")
    changes = {"apps/redis/release.yaml": UPGRADE, "apps/redis/values.yaml": VALUES_UP,
               "apps/redis/extra.yaml": "kind: ConfigMap\n"}
    result = await backend.commit_files(changes, MESSAGE, expected_parent=read.commit)
    assert result.created
    assert await backend.head() == result.sha

    clone = repo.fresh_clone()
    assert git("rev-parse", "HEAD", cwd=clone).strip() == result.sha
    assert show(clone, "HEAD", "%P") == f"{read.commit}\n"
    assert show(clone, "HEAD", "%an <%ae>|%cn <%ce>") == (
        "FluxUp Bot <fluxup-bot@example.invalid>|FluxUp Bot <fluxup-bot@example.invalid>\n")
    assert show(clone, "HEAD", "%B").rstrip("\n") == MESSAGE.rstrip("\n")
    assert changed_files(clone, "HEAD") == {
        "apps/redis/extra.yaml": "A", "apps/redis/release.yaml": "M",
        "apps/redis/values.yaml": "M"}
    for path, text in changes.items():
        assert (clone / path).read_text() == text
    assert repo.transport.writes == 1

    again = await backend.commit_files(changes, MESSAGE, expected_parent=read.commit)
    assert (again.sha, again.created) == (result.sha, False)
    assert repo.transport.writes == 1
    assert await backend.find_commit("upgrade-request", "apps/up-1") == result.sha
    assert await backend.find_commit("Upgrade-Request", "apps/up-2") is None
    diff = await backend.diff_preview({"apps/redis/release.yaml": RELEASE})
    assert '-      version: "18.2.0"\n+      version: "18.1.0"\n' in diff


async def test_find_commit_pages_past_the_servers_page_size(repo: Repo) -> None:
    target = repo.push({"a.yaml": "a\n"},
                       "bump\n\nManaged-By: fluxup\nUpgrade-Request: ns/old\n")
    for i in range(25):  # the server pages commits by 20, FluxUp asks for 50
        (repo.clone / "a.yaml").write_text(f"{i}\n")
        git("commit", "-q", "-am", f"human {i}\n\nUpgrade-Request mentioned: ns/old",
            cwd=repo.clone)
    git("push", "-q", "origin", "HEAD:main", cwd=repo.clone)
    backend = repo.backend()
    assert await backend.find_commit("Upgrade-Request", "ns/old", limit=26) == target
    assert await backend.find_commit("Upgrade-Request", "ns/old", limit=25) is None
    assert await backend.find_commit("Upgrade-Request", "ns/old", limit=500) == target
    assert await backend.find_commit("Upgrade-Request", "ns/never", limit=500) is None


async def test_human_push_to_another_file_in_between(repo: Repo) -> None:
    backend = repo.backend()
    read = await backend.read_file("apps/redis/release.yaml")
    human: list[str] = []
    repo.transport.before_write.append(
        lambda: human.append(repo.push({"apps/web/deploy.yaml": "kind: Raced\n"})))
    result = await backend.commit_files(
        {"apps/redis/release.yaml": UPGRADE}, MESSAGE, expected_parent=read.commit)
    assert result.created
    clone = repo.fresh_clone()
    assert show(clone, "HEAD", "%H %P") == f"{result.sha} {human[0]}\n"
    assert (clone / "apps/web/deploy.yaml").read_text() == "kind: Raced\n"
    assert (clone / "apps/redis/release.yaml").read_text() == UPGRADE


async def test_human_push_to_the_same_file_is_retried(
    repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = repo.backend()
    human: list[str] = []
    repo.transport.before_write.append(
        lambda: human.append(repo.push({"apps/redis/release.yaml": RELEASE + "# human\n"})))
    result = await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    assert result.created
    assert repo.transport.writes == 2  # Gitea refused the stale blob sha once
    assert "moved on" in caplog.text
    assert repo.forge.fluxup_token not in caplog.text
    clone = repo.fresh_clone()
    assert show(clone, "HEAD", "%H %P") == f"{result.sha} {human[0]}\n"
    assert (clone / "apps/redis/release.yaml").read_text() == UPGRADE


async def test_human_creating_the_same_new_file_is_a_lost_race(repo: Repo) -> None:
    backend = repo.backend()
    repo.transport.before_write.append(lambda: repo.push({"apps/redis/extra.yaml": "x: 1\n"}))
    result = await backend.commit_files({"apps/redis/extra.yaml": "x: 2\n"}, MESSAGE)
    assert result.created
    assert repo.transport.writes == 2
    assert (repo.fresh_clone() / "apps/redis/extra.yaml").read_text() == "x: 2\n"


async def test_human_making_the_same_change_in_between_commits_nothing(repo: Repo) -> None:
    backend = repo.backend()
    human: list[str] = []
    repo.transport.before_write.append(
        lambda: human.append(repo.push({"apps/redis/release.yaml": UPGRADE}, "did it")))
    result = await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    assert (result.sha, result.created) == (human[0], False)


async def test_edit_of_a_stale_parent_conflicts(repo: Repo) -> None:
    backend = repo.backend()
    read = await backend.read_file("apps/redis/release.yaml")
    human = repo.push({"apps/redis/release.yaml": RELEASE.replace("18.1.0", "18.3.0")})
    with pytest.raises(GitConflictError, match="re-read"):
        await backend.commit_files(
            {"apps/redis/release.yaml": UPGRADE}, MESSAGE, expected_parent=read.commit)
    assert repo.transport.writes == 0
    assert await backend.head() == human


async def test_branch_that_keeps_moving_is_a_rejection(repo: Repo) -> None:
    backend = repo.backend(push_attempts=2)
    for i in range(2):
        repo.transport.before_write.append(
            lambda i=i: repo.push({"apps/redis/release.yaml": f"# {i}\n"}))
    with pytest.raises(PushRejectedError, match="after 2 attempts"):
        await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    assert (repo.fresh_clone() / "apps/redis/release.yaml").read_text() == "# 1\n"


async def test_protected_branch_is_a_permanent_refusal(repo: Repo) -> None:
    admin = repo.forge.server.admin
    repo.forge.api("POST", f"/repos/{admin}/{repo.name}/branch_protections",
                   json={"rule_name": "main", "enable_push": False})
    backend = repo.backend()
    before = await backend.head()
    with pytest.raises(PushRejectedError, match="HTTP 403") as refused:
        await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    assert "branch protection" in str(refused.value)
    assert repo.transport.writes == 1  # refused at once, not retried
    assert await backend.head() == before


async def test_bad_and_read_only_tokens_are_permanent_refusals(
    repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "0" * 40
    bad = repo.backend(token=wrong)
    with pytest.raises(GitAuthError, match="token") as refused:
        await bad.read_file("apps/redis/release.yaml")
    with pytest.raises(PushRejectedError) as rejected:
        await bad.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)

    read_only = repo.backend(token=repo.forge.read_only_token)
    assert (await read_only.read_file("apps/redis/release.yaml")).text == RELEASE
    with pytest.raises(PushRejectedError, match="HTTP 403") as scoped:
        await read_only.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)

    # a token without any repository scope is refused on the first read: permanent too
    no_scope = repo.backend(token=_user_only_token(repo))
    with pytest.raises(PushRejectedError, match="HTTP 403"):
        await no_scope.head()

    for text in (str(refused.value), str(rejected.value), str(scoped.value), caplog.text):
        for secret in (wrong, repo.forge.fluxup_token, repo.forge.read_only_token):
            assert secret not in text
    assert (repo.fresh_clone() / "apps/redis/release.yaml").read_text() == RELEASE


def _user_only_token(repo: Repo) -> str:
    server = repo.forge.server
    response = httpx.post(f"{server.api}/users/{server.admin}/tokens",
                          auth=(server.admin, server.admin_password), timeout=30,
                          json={"name": f"user-only-{repo.name}", "scopes": ["read:user"]})
    assert response.status_code == 201, response.text
    return str(response.json()["sha1"])


async def test_revert_restores_files_then_is_idempotent(repo: Repo) -> None:
    backend = repo.backend()
    upgrade = await backend.commit_files(
        {"apps/redis/release.yaml": UPGRADE, "apps/redis/extra.yaml": "kind: X\n"}, MESSAGE)
    repo.push({"apps/web/deploy.yaml": "kind: Later\n"})
    revert_message = (
        f"revert(deps): roll back redis\n\nManaged-By: fluxup\nReverts: {upgrade.sha}\n")
    reverted = await backend.revert(upgrade.sha, revert_message)
    assert reverted.created

    clone = repo.fresh_clone()
    assert git("rev-parse", "HEAD", cwd=clone).strip() == reverted.sha
    assert (clone / "apps/redis/release.yaml").read_text() == RELEASE
    assert not (clone / "apps/redis/extra.yaml").exists()
    assert (clone / "apps/web/deploy.yaml").read_text() == "kind: Later\n"
    assert changed_files(clone, "HEAD") == {"apps/redis/extra.yaml": "D",
                                            "apps/redis/release.yaml": "M"}
    assert show(clone, "HEAD", "%an <%ae>|%B").rstrip("\n") == (
        f"FluxUp Bot <fluxup-bot@example.invalid>|{revert_message.rstrip()}")

    again = await backend.revert(upgrade.sha, revert_message)
    assert (again.sha, again.created) == (reverted.sha, False)


async def test_revert_conflict_and_refusals(repo: Repo) -> None:
    backend = repo.backend()
    upgrade = await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    human = repo.push({"apps/redis/release.yaml": UPGRADE + "# tuned\n"})
    with pytest.raises(GitConflictError, match="forward"):
        await backend.revert(upgrade.sha, "revert")
    assert await backend.head() == human
    root = git("rev-list", "--max-parents=0", "HEAD", cwd=repo.clone).strip()
    with pytest.raises(GitError, match="merge or root"):
        await backend.revert(root, "revert")
    with pytest.raises(GitNotFoundError):
        await backend.revert("0" * 40, "revert")
