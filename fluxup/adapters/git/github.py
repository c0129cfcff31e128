"""Git backend for GitHub (and GitHub Enterprise Server) through its REST API.

Used instead of :mod:`.cli` when the repository lives on GitHub and FluxUp has a token
(a fine-grained token with *Contents: read and write*, or a GitHub App installation
token): no clone, no ``git`` program. ``base_url`` is ``https://api.github.com`` or, for
GitHub Enterprise Server, ``https://HOST/api/v3``. Endpoints used (REST API version
``2022-11-28``):

* ``GET  /repos/{owner}/{repo}/git/ref/heads/{branch}`` - the branch head;
* ``GET  /repos/{owner}/{repo}/contents/{path}?ref=`` - a file (base64) and its blob sha;
* ``GET  /repos/{owner}/{repo}/git/commits/{sha}`` - a commit's tree and parents;
* ``GET  /repos/{owner}/{repo}/git/trees/{tree}?recursive=1`` - the file list;
* ``POST /repos/{owner}/{repo}/git/trees`` (``base_tree`` + entries; ``sha: null``
  deletes), ``POST .../git/commits``, ``PATCH .../git/refs/heads/{branch}`` with
  ``force: false`` - one atomic commit of several files. GitHub answers the ref update
  with 422 when it is not a fast-forward (someone pushed meanwhile): FluxUp re-reads and
  retries;
* ``GET  /repos/{owner}/{repo}/commits?sha=&per_page=&page=`` - history, for trailers;
* ``GET  /repos/{owner}/{repo}/commits/{sha}`` - a commit with its changed files.

The token goes in the ``Authorization`` header only. No GitHub is reachable from the
build machine: the tests (``tests/adapters/test_github.py``) run this backend against a
local HTTP server that implements these endpoints as GitHub's REST documentation
describes them, including its refusals (401, 403, 404, 409, 422).
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote

import httpx

from fluxup.adapters.git._forge import Blob, FileOp, ForgeBackend
from fluxup.adapters.git.base import Identity, check_trailer_key, message_has_trailer
from fluxup.errors import GitError, GitNotFoundError, PushRejectedError

__all__ = ["GitHubBackend"]

_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")
_PAGE = 100  # GitHub's largest per_page


class GitHubBackend(ForgeBackend):
    """One branch of one GitHub repository (see the module docs)."""

    forge = "GitHub"

    def __init__(
        self,
        *,
        owner: str,
        repo: str,
        branch: str,
        token: str,
        base_url: str = "https://api.github.com",
        author: Identity | None = None,
        push_attempts: int = 5,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            branch=branch,
            token=token,
            name=f"{owner}/{repo}",
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            author=author,
            push_attempts=push_attempts,
            timeout=timeout,
            transport=transport,
        )
        self._repo = f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"

    # ------------------------------------------------------------------ primitives

    async def head(self) -> str:
        data = await self._json("GET", f"{self._repo}/git/ref/heads/{quote(self._branch)}")
        return str(data["object"]["sha"])

    async def _resolve(self, ref: str | None) -> str:
        if ref is None or ref == self._branch:
            return await self.head()
        if _SHA.match(ref):
            return ref
        data = await self._json("GET", f"{self._repo}/commits/{quote(ref, safe='')}")
        return str(data["sha"])

    async def _blob(self, commit: str, path: str) -> Blob | None:
        try:
            data = await self._json(
                "GET", f"{self._repo}/contents/{quote(path, safe='/')}", params={"ref": commit}
            )
        except GitNotFoundError:
            return None
        if not isinstance(data, dict) or data.get("type") != "file":
            raise GitError(f"{path} at {commit[:12]} is not a file (a directory or a link)")
        content = data.get("content") or ""
        if not content and int(data.get("size") or 0) > 0:  # over 1 MB: read the blob
            blob = await self._json("GET", f"{self._repo}/git/blobs/{data['sha']}")
            content = blob.get("content") or ""
        try:
            text = base64.b64decode(content).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise GitError(f"{path} at {commit[:12]} is not UTF-8 text") from None
        return Blob(text=text, sha=str(data["sha"]))

    async def list_files(self, prefix: str = "") -> list[str]:
        head = await self.head()
        commit = await self._json("GET", f"{self._repo}/git/commits/{head}")
        tree = await self._json("GET", f"{self._repo}/git/trees/{commit['tree']['sha']}",
                                params={"recursive": "1"})
        if tree.get("truncated"):
            raise GitError(
                f"the file list of {self._name} is too large for GitHub's tree API; use the "
                "git backend for this repository"
            )
        names = [e["path"] for e in tree.get("tree") or [] if e.get("type") == "blob"]
        return sorted(n for n in names if n.startswith(prefix))

    async def _write(self, head: str, ops: list[FileOp], message: str) -> str | None:
        commit = await self._json("GET", f"{self._repo}/git/commits/{head}")
        entries: list[dict[str, Any]] = []
        for op in ops:
            entry: dict[str, Any] = {"path": op.path, "mode": "100644", "type": "blob"}
            if op.text is None:
                entry["sha"] = None
            else:
                entry["content"] = op.text
            entries.append(entry)
        tree = await self._json("POST", f"{self._repo}/git/trees",
                                json={"base_tree": commit["tree"]["sha"], "tree": entries})
        who = {"name": self._author.name, "email": self._author.email}
        created = await self._json("POST", f"{self._repo}/git/commits", json={
            "message": message, "tree": tree["sha"], "parents": [head],
            "author": who, "committer": who,
        })
        sha = str(created["sha"])
        url = f"{self._repo}/git/refs/heads/{quote(self._branch)}"
        response = await self._send("PATCH", url, json={"sha": sha, "force": False})
        if response.status_code == 200:
            return sha
        if response.status_code in (409, 422) and await self.head() != head:
            return None  # not a fast-forward: the branch moved; re-read and retry
        if response.status_code in (409, 422):
            raise PushRejectedError(
                f"GitHub refused to move {self._branch} to FluxUp's commit (HTTP "
                f"{response.status_code}: {self._detail(response)}); check the branch "
                "protection rules"
            )
        raise self._error("PATCH", url, response)

    async def _commit_info(self, sha: str) -> tuple[str, list[str], list[str]]:
        data = await self._json("GET", f"{self._repo}/commits/{quote(sha, safe='')}")
        parents = [str(p["sha"]) for p in data.get("parents") or []]
        paths: list[str] = []
        for f in data.get("files") or []:
            paths.append(str(f["filename"]))
            if f.get("previous_filename"):
                paths.append(str(f["previous_filename"]))
        return str(data["sha"]), parents, paths

    # ------------------------------------------------------------------ history

    async def find_commit(
        self, trailer_key: str, trailer_value: str, limit: int = 50
    ) -> str | None:
        check_trailer_key(trailer_key)
        size = max(1, min(_PAGE, limit))
        seen, page = 0, 1
        while seen < limit:
            commits = await self._json("GET", f"{self._repo}/commits", params={
                "sha": self._branch, "per_page": size, "page": page})
            for commit in commits[: limit - seen]:
                if message_has_trailer(commit["commit"]["message"], trailer_key, trailer_value):
                    return str(commit["sha"])
            seen += len(commits)
            if len(commits) < size:
                break
            page += 1
        return None

