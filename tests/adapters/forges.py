"""Local HTTP servers that behave like GitHub's and GitLab's REST APIs, for the backends.

No GitHub or GitLab is reachable from the build machine, so these aiohttp servers
implement - over one in-memory repository with real Git blob ids - exactly the endpoints
:mod:`fluxup.adapters.git.github` and :mod:`fluxup.adapters.git.gitlab` use, with the
request and response shapes and the refusals of the forges' REST documentation:

* GitHub: ``git/ref``, ``contents`` (base64 in 60-column lines), ``git/commits``,
  ``git/trees`` (``base_tree``, ``sha: null`` deletes), ``PATCH git/refs`` (422 "Update is
  not a fast forward", 422 "Protected branch update failed"), ``commits`` (list, one with
  ``files``); 401 "Bad credentials", 404 "Not Found".
* GitLab: ``repository/branches``, ``repository/files`` (``last_commit_id``),
  ``repository/tree`` (``X-Next-Page`` paging), ``POST repository/commits`` with
  ``actions`` (400 "The file has changed since you started editing it", 400 "A file with
  this name already exists", 403 on a protected branch), ``repository/commits`` (list, one,
  ``/diff``); 401 "401 Unauthorized", 404 "404 File Not Found".

Both servers parse raw (still percent-encoded) paths, as the forges do with
``owner/repo`` and GitLab's URL-encoded project and file paths. ``before_write`` hooks
let a test push "as a human" in the middle of FluxUp's commit.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from aiohttp import web

from fluxup.sandbox.processes import free_port

TOKEN = "forge-token-" + "s3cr3t" * 4


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
class Repo:
    """One repository with one branch."""

    branch: str = "main"
    protected: bool = False
    commits: dict[str, Commit] = field(default_factory=dict)
    trees: dict[str, dict[str, str]] = field(default_factory=dict)
    head: str = ""
    before_write: list[Callable[[], None]] = field(default_factory=list)
    writes: list[dict[str, Any]] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def new_commit(self, tree: dict[str, str], message: str, parents: list[str],
                   author: str = "Human") -> str:
        sha = hashlib.sha1(f"{next(self._counter)}{message}".encode(),
                           usedforsecurity=False).hexdigest()
        self.commits[sha] = Commit(sha, parents, dict(tree), message,
                                   {"name": author, "email": f"{author.lower()}@example.com"})
        self.trees[self.tree_sha(tree)] = dict(tree)
        return sha

    def commit(self, changes: dict[str, str | None], message: str, author: str = "Human") -> str:
        tree = dict(self.commits[self.head].tree) if self.head else {}
        for path, text in changes.items():
            if text is None:
                tree.pop(path, None)
            else:
                tree[path] = text
        self.head = self.new_commit(tree, message, [self.head] if self.head else [], author)
        return self.head

    @staticmethod
    def tree_sha(tree: dict[str, str]) -> str:
        return hashlib.sha1(json.dumps(sorted(tree.items())).encode(),
                            usedforsecurity=False).hexdigest()

    def history(self) -> list[Commit]:
        out, sha = [], self.head
        while sha:
            out.append(self.commits[sha])
            sha = self.commits[sha].parents[0] if self.commits[sha].parents else ""
        return out

    def last_change(self, commit: str, path: str) -> str:
        """The newest commit at or before ``commit`` that changed ``path``."""
        sha = commit
        while True:
            c = self.commits[sha]
            parent = self.commits[c.parents[0]] if c.parents else None
            if parent is None or parent.tree.get(path) != c.tree.get(path):
                return sha
            sha = parent.sha

    def run_hooks(self) -> None:
        hooks, self.before_write[:] = list(self.before_write), []
        for hook in hooks:
            hook()


def _b64_lines(text: str) -> str:
    raw = base64.b64encode(text.encode()).decode()
    return "\n".join(raw[i:i + 60] for i in range(0, len(raw), 60)) + "\n"


def _query(request: web.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.rel_url.raw_query_string).items()}


class GitHub:
    """GitHub's REST API for repository ``home/cluster``."""

    prefix = "/repos/home/cluster"

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"message": "Bad credentials"}, status=401)
        raw = request.rel_url.raw_path
        if not raw.startswith(self.prefix + "/"):
            return web.json_response({"message": "Not Found"}, status=404)
        rest = raw[len(self.prefix) + 1:]
        body = await request.json() if request.can_read_body else None
        q = _query(request)
        r = self.repo
        if request.method == "GET" and rest == f"git/ref/heads/{r.branch}":
            return web.json_response({"ref": f"refs/heads/{r.branch}",
                                      "object": {"sha": r.head, "type": "commit"}})
        if request.method == "GET" and rest.startswith("contents/"):
            path = unquote(rest[len("contents/"):])
            commit = r.commits.get(q.get("ref", r.head))
            if commit is None or path not in commit.tree:
                if commit and any(p.startswith(path + "/") for p in commit.tree):
                    return web.json_response([{"type": "file", "path": path}])
                return web.json_response({"message": "Not Found"}, status=404)
            text = commit.tree[path]
            return web.json_response({"type": "file", "encoding": "base64", "path": path,
                                      "size": len(text.encode()), "sha": blob_sha(text),
                                      "content": _b64_lines(text)})
        if request.method == "GET" and rest.startswith("git/commits/"):
            c = r.commits.get(rest.rsplit("/", 1)[1])
            if c is None:
                return web.json_response({"message": "Not Found"}, status=404)
            return web.json_response({"sha": c.sha, "message": c.message,
                                      "tree": {"sha": r.tree_sha(c.tree)},
                                      "parents": [{"sha": p} for p in c.parents]})
        if request.method == "GET" and rest.startswith("git/trees/"):
            tree = r.trees.get(rest.rsplit("/", 1)[1])
            if tree is None:
                return web.json_response({"message": "Not Found"}, status=404)
            dirs = {p.rsplit("/", i)[0] for p in tree for i in range(1, p.count("/") + 1)}
            entries = [{"path": d, "type": "tree", "mode": "040000"} for d in sorted(dirs)]
            entries += [{"path": p, "type": "blob", "mode": "100644", "sha": blob_sha(t)}
                        for p, t in sorted(tree.items())]
            return web.json_response({"sha": rest.rsplit("/", 1)[1], "tree": entries,
                                      "truncated": False})
        if request.method == "POST" and rest == "git/trees":
            assert body is not None
            tree = dict(r.trees[body["base_tree"]])
            for e in body["tree"]:
                if e.get("sha", "x") is None:
                    tree.pop(e["path"], None)
                else:
                    tree[e["path"]] = e["content"]
            sha = r.tree_sha(tree)
            r.trees[sha] = tree
            return web.json_response({"sha": sha}, status=201)
        if request.method == "POST" and rest == "git/commits":
            assert body is not None
            sha = r.new_commit(r.trees[body["tree"]], body["message"], body["parents"],
                               body["author"]["name"])
            return web.json_response({"sha": sha}, status=201)
        if request.method == "PATCH" and rest == f"git/refs/heads/{r.branch}":
            assert body is not None
            r.run_hooks()
            r.writes.append(body)
            if r.protected:
                return web.json_response(
                    {"message": f"Protected branch update failed for refs/heads/{r.branch}."},
                    status=422)
            if r.head not in r.commits[body["sha"]].parents and not body.get("force"):
                return web.json_response({"message": "Update is not a fast forward"},
                                         status=422)
            r.head = body["sha"]
            return web.json_response({"ref": f"refs/heads/{r.branch}",
                                      "object": {"sha": r.head}})
        if request.method == "GET" and rest == "commits":
            history = r.history() if q.get("sha", r.branch) == r.branch else []
            size, page = int(q.get("per_page", 30)), int(q.get("page", 1))
            chunk = history[(page - 1) * size: page * size]
            return web.json_response([{"sha": c.sha, "commit": {"message": c.message},
                                       "parents": [{"sha": p} for p in c.parents]}
                                      for c in chunk])
        if request.method == "GET" and rest.startswith("commits/"):
            c = r.commits.get(rest.rsplit("/", 1)[1])
            if c is None:
                return web.json_response({"message": "No commit found"}, status=422)
            before = r.commits[c.parents[0]].tree if c.parents else {}
            files = [{"filename": p, "status": "modified"}
                     for p in sorted(set(before) | set(c.tree))
                     if before.get(p) != c.tree.get(p)]
            return web.json_response({"sha": c.sha, "commit": {"message": c.message},
                                      "parents": [{"sha": p} for p in c.parents],
                                      "files": files})
        return web.json_response({"message": "Not Found"}, status=404)


class GitLab:
    """GitLab's REST API (v4) for project ``home/cluster``."""

    prefix = "/api/v4/projects/home%2Fcluster/repository/"

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("PRIVATE-TOKEN") != TOKEN:
            return web.json_response({"message": "401 Unauthorized"}, status=401)
        raw = request.rel_url.raw_path
        if not raw.startswith(self.prefix):
            return web.json_response({"message": "404 Project Not Found"}, status=404)
        rest = raw[len(self.prefix):]
        q = _query(request)
        r = self.repo
        if request.method == "GET" and rest == f"branches/{r.branch}":
            return web.json_response({"name": r.branch, "protected": r.protected,
                                      "commit": {"id": r.head}})
        if request.method == "GET" and rest.startswith("files/"):
            path = unquote(rest[len("files/"):])
            commit = r.commits.get(q.get("ref", ""))
            if commit is None or path not in commit.tree:
                return web.json_response({"message": "404 File Not Found"}, status=404)
            text = commit.tree[path]
            return web.json_response({
                "file_name": path.rsplit("/", 1)[-1], "file_path": path,
                "size": len(text.encode()), "encoding": "base64", "ref": q["ref"],
                "content": base64.b64encode(text.encode()).decode(),
                "blob_id": blob_sha(text), "commit_id": commit.sha,
                "last_commit_id": r.last_change(commit.sha, path)})
        if request.method == "GET" and rest == "tree":
            commit = r.commits[q.get("ref", r.head)]
            size, page = int(q.get("per_page", 20)), int(q.get("page", 1))
            items = [{"path": p, "type": "blob", "mode": "100644"} for p in sorted(commit.tree)]
            chunk = items[(page - 1) * size: page * size]
            more = page * size < len(items)
            return web.json_response(chunk, headers={"X-Page": str(page),
                                                     "X-Next-Page": str(page + 1) if more else ""})
        if request.method == "POST" and rest == "commits":
            body = await request.json()
            r.run_hooks()
            r.writes.append(body)
            if r.protected:
                return web.json_response(
                    {"message": "403 Forbidden - You are not allowed to push into this branch"},
                    status=403)
            tree = dict(r.commits[r.head].tree)
            for a in body["actions"]:
                path = a["file_path"]
                if a["action"] == "create" and path in tree:
                    return web.json_response(
                        {"message": "A file with this name already exists"}, status=400)
                if a["action"] in ("update", "delete"):
                    if path not in tree:
                        return web.json_response(
                            {"message": "A file with this name doesn't exist"}, status=400)
                    if a.get("last_commit_id") and \
                            a["last_commit_id"] != r.last_change(r.head, path):
                        return web.json_response({
                            "message": "The file has changed since you started editing it: "
                                       f"{path}"}, status=400)
                if a["action"] == "delete":
                    del tree[path]
                else:
                    assert a.get("encoding", "text") == "text"
                    tree[path] = a["content"]
            r.head = r.new_commit(tree, body["commit_message"], [r.head], body["author_name"])
            return web.json_response({"id": r.head, "short_id": r.head[:8],
                                      "message": body["commit_message"],
                                      "parent_ids": r.commits[r.head].parents}, status=201)
        if request.method == "GET" and rest == "commits":
            history = r.history() if q.get("ref_name", r.branch) == r.branch else []
            size, page = int(q.get("per_page", 20)), int(q.get("page", 1))
            return web.json_response([{"id": c.sha, "message": c.message,
                                       "parent_ids": c.parents}
                                      for c in history[(page - 1) * size: page * size]])
        if request.method == "GET" and rest.startswith("commits/"):
            parts = rest.split("/")
            c = r.commits.get(parts[1])
            if c is None:
                return web.json_response({"message": "404 Commit Not Found"}, status=404)
            if len(parts) == 3 and parts[2] == "diff":
                before = r.commits[c.parents[0]].tree if c.parents else {}
                return web.json_response([
                    {"old_path": p, "new_path": p, "new_file": p not in before,
                     "deleted_file": p not in c.tree, "renamed_file": False}
                    for p in sorted(set(before) | set(c.tree)) if before.get(p) != c.tree.get(p)])
            return web.json_response({"id": c.sha, "message": c.message,
                                      "parent_ids": c.parents})
        return web.json_response({"message": "404 Not Found"}, status=404)


@asynccontextmanager
async def serve(api: GitHub | GitLab) -> AsyncIterator[str]:
    """Run ``api`` on 127.0.0.1; yields its base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
