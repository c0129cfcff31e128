"""GiteaBackend against an in-memory stand-in for Gitea's REST API.

No Gitea server runs on this machine, so :class:`FakeGitea` (an ``httpx.MockTransport``
handler) implements the endpoints the backend uses with the request and response shapes
of Gitea's API documentation (``ChangeFilesOptions``/``FilesResponse``,
``ContentsResponse``, ``GitTreeResponse``, ``Commit``, ``Branch``), including its
refusals: 401 without a valid token, 403 on a protected branch, 404 for missing files,
422 "sha does not match" for a stale blob sha. Hooks let a test push "as a human" in the
middle of FluxUp's commit, to exercise the retry paths.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from fluxup.adapters.git import GitBackend, GiteaBackend, Identity
from fluxup.errors import (
    ConfigError,
    GitAuthError,
    GitConflictError,
    GitError,
    GitNotFoundError,
    PushRejectedError,
)

TOKEN = "gitea-token-" + "s3cr3t" * 4
PREFIX = "/api/v1/repos/home/cluster"
RELEASE = 'kind: HelmRelease\nspec:\n  chart:\n    spec:\n      version: "18.1.0"\n'
UPGRADE = RELEASE.replace("18.1.0", "18.2.0")
MESSAGE = "chore(deps): update redis to 18.2.0\n\nManaged-By: fluxup\nUpgrade-Request: apps/up-1\n"


def blob_sha(text: str) -> str:
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass
class Commit:
    sha: str
    parents: list[str]
    tree: dict[str, str]
    message: str
    author: dict[str, str]


@dataclass
class FakeGitea:
    """A single repository ``home/cluster`` with one branch, served like Gitea would."""

    token: str = TOKEN
    branch: str = "main"
    protected: bool = False
    commits: dict[str, Commit] = field(default_factory=dict)
    head: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    before_change: list[Callable[[], None]] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    # ---------------------------------------------------------------- repository model

    def commit(self, changes: dict[str, str | None], message: str, author: str = "Human") -> str:
        tree = dict(self.commits[self.head].tree) if self.head else {}
        for path, text in changes.items():
            if text is None:
                tree.pop(path, None)
            else:
                tree[path] = text
        sha = hashlib.sha1(f"commit {next(self._counter)}".encode()).hexdigest()
        parents = [self.head] if self.head else []
        self.commits[sha] = Commit(sha, parents, tree, message, {"name": author})
        self.head = sha
        return sha

    def resolve(self, ref: str) -> Commit | None:
        if ref == self.branch:
            return self.commits[self.head]
        return self.commits.get(ref)

    def history(self, ref: str) -> list[Commit]:
        commit = self.resolve(ref)
        out = []
        while commit is not None:
            out.append(commit)
            commit = self.commits.get(commit.parents[0]) if commit.parents else None
        return out

    # ---------------------------------------------------------------- HTTP

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"token {self.token}":
            return error(401, "user does not exist [uid: 0, name: ]")
        path = unquote(request.url.path)
        if not path.startswith(PREFIX + "/"):
            return error(404, "repository does not exist")
        route = path[len(PREFIX) :]
        query = request.url.params
        if request.method == "GET" and route == f"/branches/{self.branch}":
            head = self.commits[self.head]
            return ok({"name": self.branch, "commit": {"id": head.sha, "message": head.message}})
        if request.method == "GET" and route.startswith("/branches/"):
            return error(404, "branch does not exist")
        if request.method == "GET" and route.startswith("/contents/"):
            return self.get_contents(route[len("/contents/") :], query.get("ref", self.branch))
        if request.method == "POST" and route == "/contents":
            return self.change_files(json.loads(request.content))
        if request.method == "GET" and route.startswith("/git/trees/"):
            return self.get_tree(route[len("/git/trees/") :], query)
        if request.method == "GET" and route == "/commits":
            return self.list_commits(query)
        if request.method == "GET" and route.startswith("/git/commits/"):
            return self.get_commit(route[len("/git/commits/") :])
        return error(404, f"no route {request.method} {route}")

    def get_contents(self, file: str, ref: str) -> httpx.Response:
        commit = self.resolve(ref)
        if commit is None:
            return error(404, f"object does not exist [id: {ref}, rel_path: ]")
        if file not in commit.tree:
            if any(p.startswith(file + "/") for p in commit.tree):
                return ok([{"name": p, "path": p, "type": "file"} for p in commit.tree])
            return error(404, f"object does not exist [id: {commit.sha}, rel_path: {file}]")
        text = commit.tree[file]
        return ok(
            {
                "name": file.rsplit("/", 1)[-1],
                "path": file,
                "sha": blob_sha(text),
                "last_commit_sha": commit.sha,
                "type": "file",
                "size": len(text.encode()),
                "encoding": "base64",
                "content": base64.b64encode(text.encode()).decode(),
            }
        )

    def get_tree(self, sha: str, query: httpx.QueryParams) -> httpx.Response:
        commit = self.resolve(sha)
        if commit is None:
            return error(404, "sha not found")
        dirs = {p.rsplit("/", i)[0] for p in commit.tree for i in range(1, p.count("/") + 1)}
        entries = [{"path": d, "mode": "040000", "type": "tree", "sha": "0" * 40} for d in dirs]
        entries += [
            {"path": p, "mode": "100644", "type": "blob", "sha": blob_sha(t), "size": len(t)}
            for p, t in commit.tree.items()
        ]
        entries.sort(key=lambda e: str(e["path"]))
        page, per_page = int(query.get("page", 1)), min(int(query.get("per_page", 1000)), 3)
        chunk = entries[(page - 1) * per_page : page * per_page]
        return ok(
            {
                "sha": commit.sha,
                "tree": chunk,
                "truncated": page * per_page < len(entries),
                "page": page,
                "total_count": len(entries),
            }
        )

    def list_commits(self, query: httpx.QueryParams) -> httpx.Response:
        history = self.history(query.get("sha", self.branch))
        limit = min(int(query.get("limit", 50)), 50)  # MAX_RESPONSE_ITEMS
        page = int(query.get("page", 1))
        chunk = history[(page - 1) * limit : page * limit]
        body = [
            {
                "sha": c.sha,
                "commit": {"message": c.message, "author": c.author},
                "parents": [{"sha": p} for p in c.parents],
            }
            for c in chunk
        ]
        return httpx.Response(200, json=body, headers={"X-Total-Count": str(len(history))})

    def get_commit(self, sha: str) -> httpx.Response:
        commit = self.commits.get(sha)
        if commit is None:
            return error(404, f"sha not found [{sha}]")
        before = self.commits[commit.parents[0]].tree if commit.parents else {}
        files = []
        for path in sorted(set(before) | set(commit.tree)):
            if before.get(path) == commit.tree.get(path):
                continue
            status = (
                "added"
                if path not in before
                else "removed"
                if path not in commit.tree
                else "modified"
            )
            files.append({"filename": path, "status": status})
        return ok(
            {
                "sha": commit.sha,
                "commit": {"message": commit.message},
                "parents": [{"sha": p} for p in commit.parents],
                "files": files,
            }
        )

    def change_files(self, body: dict[str, Any]) -> httpx.Response:
        self.posts.append(body)
        if self.before_change:
            self.before_change.pop(0)()
        if body.get("branch") != self.branch:
            return error(404, "branch does not exist")
        if self.protected:
            return error(403, "user cannot commit to protected branch")
        tree = self.commits[self.head].tree
        changes: dict[str, str | None] = {}
        for op in body["files"]:
            current = tree.get(op["path"])
            if op["operation"] == "create":
                if current is not None:
                    return error(422, f"repository file already exists [path: {op['path']}]")
            elif current is None:
                return error(404, f"file does not exist [path: {op['path']}]")
            elif op.get("sha") != blob_sha(current):
                given, expected = op.get("sha"), blob_sha(current)
                return error(422, f"sha does not match [given: {given}, expected: {expected}]")
            changes[op["path"]] = (
                None if op["operation"] == "delete" else base64.b64decode(op["content"]).decode()
            )
        sha = self.commit(changes, body["message"], body["author"]["name"])
        return httpx.Response(
            201,
            json={
                "commit": {"sha": sha, "parents": [{"sha": self.commits[sha].parents[0]}]},
                "files": [{"path": p} for p in changes],
                "verification": {"verified": False},
            },
        )


def ok(body: object) -> httpx.Response:
    return httpx.Response(200, json=body)


def error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"message": message, "url": "https://gitea.example/api"})


SEED = {"apps/redis/release.yaml": RELEASE, "apps/web/deploy.yaml": "kind: Deployment\n"}


@pytest.fixture
def gitea() -> FakeGitea:
    fake = FakeGitea()
    fake.commit(dict(SEED), "initial")
    return fake


def backend_for(fake: FakeGitea, token: str = TOKEN, **kwargs: Any) -> GiteaBackend:
    return GiteaBackend(
        base_url="https://gitea.example/",
        owner="home",
        repo="cluster",
        branch="main",
        token=token,
        transport=httpx.MockTransport(fake),
        **kwargs,
    )


async def test_reads_list_and_request_shapes(gitea: FakeGitea) -> None:
    backend = backend_for(gitea)
    assert isinstance(backend, GitBackend)
    head = await backend.head()
    assert head == gitea.head
    content = await backend.read_file("apps/redis/release.yaml")
    assert (content.text, content.sha, content.commit) == (RELEASE, blob_sha(RELEASE), head)
    assert await backend.list_files("apps/") == ["apps/redis/release.yaml", "apps/web/deploy.yaml"]
    assert await backend.list_files("apps/redis") == ["apps/redis/release.yaml"]
    later = gitea.commit({"apps/web/deploy.yaml": "kind: Changed\n"}, "human")
    assert (await backend.read_file("apps/web/deploy.yaml", ref=head)).text == "kind: Deployment\n"
    assert (await backend.read_file("apps/web/deploy.yaml")).commit == later
    with pytest.raises(GitNotFoundError, match=r"apps/none\.yaml does not exist"):
        await backend.read_file("apps/none.yaml")
    with pytest.raises(GitError, match="not a file"):
        await backend.read_file("apps/web")
    with pytest.raises(ConfigError):
        await backend.read_file("/etc/passwd")
    paths = {r.url.path for r in gitea.requests}
    assert f"{PREFIX}/branches/main" in paths
    assert f"{PREFIX}/contents/apps/redis/release.yaml" in paths
    assert all(r.headers["Authorization"] == f"token {TOKEN}" for r in gitea.requests)
    assert all(TOKEN not in str(r.url) for r in gitea.requests)
    await backend.aclose()


async def test_commit_two_files_atomically_then_idempotently(gitea: FakeGitea) -> None:
    first = gitea.head
    backend = backend_for(gitea, author=Identity("FluxUp", "fluxup@example.invalid"))
    read = await backend.read_file("apps/redis/release.yaml")
    changes = {"apps/redis/release.yaml": UPGRADE, "apps/redis/extra.yaml": "kind: ConfigMap\n"}
    result = await backend.commit_files(changes, MESSAGE, expected_parent=read.commit)
    assert result.created
    assert result.sha == gitea.head
    commit = gitea.commits[result.sha]
    assert commit.parents == [first]
    assert commit.message == MESSAGE
    assert {p: commit.tree[p] for p in changes} == changes
    (post,) = gitea.posts
    assert post["branch"] == "main"
    assert post["author"] == {"name": "FluxUp", "email": "fluxup@example.invalid"}
    assert post["files"] == [
        {
            "operation": "create",
            "path": "apps/redis/extra.yaml",
            "content": base64.b64encode(b"kind: ConfigMap\n").decode(),
        },
        {
            "operation": "update",
            "path": "apps/redis/release.yaml",
            "content": base64.b64encode(UPGRADE.encode()).decode(),
            "sha": blob_sha(RELEASE),
        },
    ]

    again = await backend.commit_files(changes, MESSAGE, expected_parent=read.commit)
    assert (again.sha, again.created) == (result.sha, False)
    assert len(gitea.posts) == 1
    assert await backend.find_commit("upgrade-request", "apps/up-1") == result.sha
    assert await backend.find_commit("Upgrade-Request", "apps/up-2") is None


async def test_find_commit_pages_through_history(gitea: FakeGitea) -> None:
    target = gitea.commit(
        {"a.yaml": "a\n"}, "bump\n\nManaged-By: fluxup\nUpgrade-Request: ns/old\n"
    )
    for i in range(54):
        gitea.commit({"a.yaml": f"{i}\n"}, f"human {i}\n\nUpgrade-Request mentioned: ns/old\n")
    backend = backend_for(gitea)
    assert await backend.find_commit("Upgrade-Request", "ns/old", limit=55) == target
    assert await backend.find_commit("Upgrade-Request", "ns/old", limit=54) is None
    assert await backend.find_commit("Upgrade-Request", "ns/old", limit=500) == target


async def test_lost_race_on_another_file_still_commits_both(gitea: FakeGitea) -> None:
    backend = backend_for(gitea)
    read = await backend.read_file("apps/redis/release.yaml")
    gitea.before_change.append(
        lambda: gitea.commit({"apps/web/deploy.yaml": "kind: Raced\n"}, "human")
    )
    result = await backend.commit_files(
        {"apps/redis/release.yaml": UPGRADE}, MESSAGE, expected_parent=read.commit
    )
    assert result.created
    tree = gitea.commits[gitea.head].tree
    assert tree["apps/web/deploy.yaml"] == "kind: Raced\n"
    assert tree["apps/redis/release.yaml"] == UPGRADE


async def test_lost_race_on_the_same_file_is_retried(
    gitea: FakeGitea, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = backend_for(gitea)
    gitea.before_change.append(
        lambda: gitea.commit({"apps/redis/release.yaml": RELEASE + "# human\n"}, "human")
    )
    result = await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    assert result.created
    assert len(gitea.posts) == 2
    assert gitea.posts[1]["files"][0]["sha"] == blob_sha(RELEASE + "# human\n")
    assert gitea.commits[gitea.head].tree["apps/redis/release.yaml"] == UPGRADE
    assert "moved on" in caplog.text
    assert TOKEN not in caplog.text


async def test_lost_race_against_the_same_change_commits_nothing(gitea: FakeGitea) -> None:
    backend = backend_for(gitea)
    gitea.before_change.append(
        lambda: gitea.commit({"apps/redis/release.yaml": UPGRADE}, "someone did it already")
    )
    result = await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    assert (result.sha, result.created) == (gitea.head, False)


async def test_edit_of_a_stale_parent_conflicts(gitea: FakeGitea) -> None:
    backend = backend_for(gitea)
    read = await backend.read_file("apps/redis/release.yaml")
    human = gitea.commit({"apps/redis/release.yaml": RELEASE.replace("18.1.0", "18.3.0")}, "h")
    with pytest.raises(GitConflictError, match="re-read"):
        await backend.commit_files(
            {"apps/redis/release.yaml": UPGRADE}, MESSAGE, expected_parent=read.commit
        )
    assert gitea.head == human
    assert gitea.posts == []


async def test_branch_that_keeps_moving_is_a_rejection(gitea: FakeGitea) -> None:
    backend = backend_for(gitea, push_attempts=2)
    for i in range(2):
        gitea.before_change.append(
            lambda i=i: gitea.commit({"apps/redis/release.yaml": f"# {i}\n"}, "human")
        )
    with pytest.raises(PushRejectedError, match="after 2 attempts"):
        await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)


async def test_revert_clean_then_already_reverted(gitea: FakeGitea) -> None:
    backend = backend_for(gitea)
    upgrade = await backend.commit_files(
        {"apps/redis/release.yaml": UPGRADE, "apps/redis/extra.yaml": "kind: X\n"}, MESSAGE
    )
    gitea.commit({"apps/web/deploy.yaml": "kind: Later\n"}, "human")
    reverted = await backend.revert(upgrade.sha, "revert(deps): roll back\n\nReverts: x\n")
    assert reverted.created
    tree = gitea.commits[gitea.head].tree
    assert tree["apps/redis/release.yaml"] == RELEASE
    assert "apps/redis/extra.yaml" not in tree
    assert tree["apps/web/deploy.yaml"] == "kind: Later\n"
    ops = {op["path"]: op["operation"] for op in gitea.posts[-1]["files"]}
    assert ops == {"apps/redis/release.yaml": "update", "apps/redis/extra.yaml": "delete"}
    again = await backend.revert(upgrade.sha, "revert again")
    assert (again.sha, again.created) == (reverted.sha, False)


async def test_revert_conflict_and_refusals(gitea: FakeGitea) -> None:
    backend = backend_for(gitea)
    upgrade = await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    human = gitea.commit({"apps/redis/release.yaml": UPGRADE + "# tuned\n"}, "human")
    with pytest.raises(GitConflictError, match="forward"):
        await backend.revert(upgrade.sha, "revert")
    assert gitea.head == human
    root = gitea.history("main")[-1].sha
    with pytest.raises(GitError, match="merge or root"):
        await backend.revert(root, "revert")
    with pytest.raises(GitNotFoundError):
        await backend.revert("0" * 40, "revert")


async def test_diff_preview(gitea: FakeGitea) -> None:
    backend = backend_for(gitea)
    diff = await backend.diff_preview(
        {"apps/redis/release.yaml": UPGRADE, "apps/redis/new.yaml": "kind: X\n"}
    )
    assert "--- /dev/null\n+++ b/apps/redis/new.yaml\n@@ -0,0 +1 @@\n+kind: X\n" in diff
    assert '-      version: "18.1.0"\n+      version: "18.2.0"\n' in diff
    assert gitea.posts == []


async def test_wrong_token_never_leaks(gitea: FakeGitea, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-" + TOKEN
    backend = backend_for(gitea, token=wrong)
    with pytest.raises(GitAuthError) as refused:
        await backend.read_file("apps/redis/release.yaml")
    with pytest.raises(PushRejectedError) as rejected:
        await backend.commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)
    for text in (str(refused.value), str(rejected.value), caplog.text, repr(backend)):
        assert wrong not in text
        assert TOKEN not in text
    assert "token" in str(refused.value)


async def test_protected_branch_is_a_rejection(gitea: FakeGitea) -> None:
    gitea.protected = True
    with pytest.raises(PushRejectedError, match="protected branch"):
        await backend_for(gitea).commit_files({"apps/redis/release.yaml": UPGRADE}, MESSAGE)


async def test_transport_errors_become_git_errors() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"connection refused ({request.headers['Authorization']})")

    backend = GiteaBackend(
        base_url="https://gitea.example",
        owner="home",
        repo="cluster",
        branch="main",
        token=TOKEN,
        transport=httpx.MockTransport(unreachable),
    )
    with pytest.raises(GitError) as caught:
        await backend.head()
    assert "connection refused" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_a_token_is_required() -> None:
    with pytest.raises(ConfigError):
        GiteaBackend(base_url="https://g", owner="o", repo="r", branch="main", token="")
