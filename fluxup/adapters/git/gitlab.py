"""Git backend for GitLab (gitlab.com or self-managed) through its REST API (v4).

Used instead of :mod:`.cli` when the repository lives on GitLab and FluxUp has a token
(a project or personal access token with the ``api`` scope, role Developer or higher on
the branch). ``base_url`` is the GitLab address (``https://gitlab.com``); ``project`` is
the project's path (``group/subgroup/project``) or numeric id. Endpoints used:

* ``GET  /api/v4/projects/:id/repository/branches/:branch`` - the branch head;
* ``GET  /api/v4/projects/:id/repository/files/:path?ref=`` - a file (base64) with its
  ``blob_id`` and ``last_commit_id``;
* ``GET  /api/v4/projects/:id/repository/tree?recursive=true&ref=`` - the file list
  (paged: ``X-Next-Page``);
* ``POST /api/v4/projects/:id/repository/commits`` - several ``actions``
  (``create``/``update``/``delete``) in one atomic commit. Each update and delete carries
  the file's ``last_commit_id``; GitLab refuses the commit (HTTP 400) when the file
  changed since, which is how a lost race is detected (then FluxUp re-reads and
  retries), and refuses a ``create`` of a file that appeared meanwhile the same way;
* ``GET  /api/v4/projects/:id/repository/commits?ref_name=&per_page=&page=`` - history;
* ``GET  /api/v4/projects/:id/repository/commits/:sha`` and ``.../:sha/diff`` - a commit,
  its parents and changed files.

The token goes in the ``PRIVATE-TOKEN`` header only. No GitLab is reachable from the
build machine: the tests (``tests/adapters/test_gitlab.py``) run this backend against a
local HTTP server that implements these endpoints as GitLab's REST documentation
describes them, including its refusals (400, 401, 403, 404).
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote

import httpx

from fluxup.adapters.git._forge import Blob, FileOp, ForgeBackend
from fluxup.adapters.git.base import Identity, check_trailer_key, message_has_trailer
from fluxup.errors import GitError, GitNotFoundError

__all__ = ["GitLabBackend"]

_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")
_PAGE = 100  # GitLab's largest per_page


class GitLabBackend(ForgeBackend):
    """One branch of one GitLab project (see the module docs)."""

    forge = "GitLab"

    def __init__(
        self,
        *,
        project: str,
        branch: str,
        token: str,
        base_url: str = "https://gitlab.com",
        author: Identity | None = None,
        push_attempts: int = 5,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url.rstrip("/") + "/api/v4",
            branch=branch,
            token=token,
            name=project,
            headers={"PRIVATE-TOKEN": token, "Accept": "application/json"},
            author=author,
            push_attempts=push_attempts,
            timeout=timeout,
            transport=transport,
        )
        self._project = f"/projects/{quote(project, safe='')}"

    # ------------------------------------------------------------------ primitives

    async def head(self) -> str:
        data = await self._json(
            "GET", f"{self._project}/repository/branches/{quote(self._branch, safe='')}"
        )
        return str(data["commit"]["id"])

    async def _resolve(self, ref: str | None) -> str:
        if ref is None or ref == self._branch:
            return await self.head()
        if _SHA.match(ref):
            return ref
        data = await self._json(
            "GET", f"{self._project}/repository/commits/{quote(ref, safe='')}"
        )
        return str(data["id"])

    async def _blob(self, commit: str, path: str) -> Blob | None:
        try:
            data = await self._json(
                "GET", f"{self._project}/repository/files/{quote(path, safe='')}",
                params={"ref": commit},
            )
        except GitNotFoundError:
            return None
        try:
            text = base64.b64decode(data.get("content") or "").decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise GitError(f"{path} at {commit[:12]} is not UTF-8 text") from None
        # the id that locks an update: the last commit that changed the file
        return Blob(text=text, sha=str(data.get("last_commit_id") or data["blob_id"]))

    async def list_files(self, prefix: str = "") -> list[str]:
        head = await self.head()
        names: list[str] = []
        page: str | None = "1"
        while page:
            response = await self._send(
                "GET", f"{self._project}/repository/tree",
                params={"ref": head, "recursive": "true", "per_page": _PAGE, "page": page},
            )
            if response.status_code >= 300:
                raise self._error("GET", f"{self._project}/repository/tree", response)
            names += [e["path"] for e in response.json() if e.get("type") == "blob"]
            page = response.headers.get("X-Next-Page") or None
        return sorted(n for n in names if n.startswith(prefix))

    async def _write(self, head: str, ops: list[FileOp], message: str) -> str | None:
        actions: list[dict[str, Any]] = []
        for op in ops:
            action: dict[str, Any] = {"file_path": op.path}
            if op.text is None:
                action["action"] = "delete"
            else:
                action["action"] = "create" if op.current is None else "update"
                action["content"] = op.text
                action["encoding"] = "text"
            if op.current is not None:
                action["last_commit_id"] = op.current.sha
            actions.append(action)
        url = f"{self._project}/repository/commits"
        response = await self._send("POST", url, json={
            "branch": self._branch, "commit_message": message, "actions": actions,
            "author_name": self._author.name, "author_email": self._author.email,
        })
        if response.status_code in (200, 201):
            return str(response.json()["id"])
        if response.status_code in (400, 409):
            detail = self._detail(response).lower()
            if "changed" in detail or "already exists" in detail or "conflict" in detail \
                    or "doesn't exist" in detail or "does not exist" in detail:
                return None  # a file moved on since it was read: re-read and retry
        raise self._error("POST", url, response)

    async def _commit_info(self, sha: str) -> tuple[str, list[str], list[str]]:
        ref = quote(sha, safe="")
        data = await self._json("GET", f"{self._project}/repository/commits/{ref}")
        diff = await self._json("GET", f"{self._project}/repository/commits/{ref}/diff",
                                params={"per_page": _PAGE})
        paths: list[str] = []
        for d in diff:
            paths.append(str(d["new_path"]))
            if d.get("old_path") and d["old_path"] != d["new_path"]:
                paths.append(str(d["old_path"]))
        return str(data["id"]), [str(p) for p in data.get("parent_ids") or []], paths

    # ------------------------------------------------------------------ history

    async def find_commit(
        self, trailer_key: str, trailer_value: str, limit: int = 50
    ) -> str | None:
        check_trailer_key(trailer_key)
        size = max(1, min(_PAGE, limit))
        seen, page = 0, 1
        while seen < limit:
            commits = await self._json("GET", f"{self._project}/repository/commits", params={
                "ref_name": self._branch, "per_page": size, "page": page})
            for commit in commits[: limit - seen]:
                if message_has_trailer(commit["message"], trailer_key, trailer_value):
                    return str(commit["id"])
            seen += len(commits)
            if len(commits) < size:
                break
            page += 1
        return None
