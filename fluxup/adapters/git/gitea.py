"""Git backend for Gitea (and Forgejo) through its REST API, with httpx.

Used instead of :mod:`.cli` when the repository lives on a Gitea server and FluxUp has an
access token: no clone, no ``git`` program. Endpoints (all under ``/api/v1``):

* ``GET  /repos/{owner}/{repo}/branches/{branch}`` - the branch head;
* ``GET  /repos/{owner}/{repo}/contents/{path}?ref=`` - a file (base64) and its blob sha;
* ``GET  /repos/{owner}/{repo}/git/trees/{sha}?recursive=true`` - the file list;
* ``POST /repos/{owner}/{repo}/contents`` - ``ChangeFilesOptions``: several file
  operations (``create``/``update``/``delete`` with the current blob ``sha``) in one
  atomic commit; Gitea refuses it when a ``sha`` is stale, which is how a lost race is
  detected (then FluxUp re-reads and retries);
* ``GET  /repos/{owner}/{repo}/commits?sha=&limit=&page=`` - history, for trailers;
* ``GET  /repos/{owner}/{repo}/git/commits/{sha}?files=true`` - a commit and its files.

Gitea has no revert endpoint: :meth:`GiteaBackend.revert` restores each file the commit
changed to its content before the commit, provided nobody changed the file since
(otherwise GitConflictError, and the caller commits the previous version forward). That
is stricter than ``git revert``'s line merge, and never silently drops anyone's edit.

The token goes in the ``Authorization`` header only; it never appears in URLs, logs or
exception messages. A 401 is :class:`~fluxup.errors.GitAuthError`, a 403 (missing scope,
protected branch) :class:`~fluxup.errors.PushRejectedError`: both permanent refusals.

Tested against a real Gitea server (``tests/adapters/test_gitea_real.py``, built from
its published Go module, see :mod:`fluxup.sandbox.gitea`).
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from fluxup.adapters.git.base import (
    CommitResult,
    FileContent,
    Identity,
    check_repo_path,
    check_trailer_key,
    message_has_trailer,
    render_diff,
)
from fluxup.errors import (
    ConfigError,
    GitAuthError,
    GitConflictError,
    GitError,
    GitNotFoundError,
    PushRejectedError,
)

__all__ = ["GiteaBackend"]

log = logging.getLogger(__name__)

_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")
_PAGE = 50  # Gitea's default MAX_RESPONSE_ITEMS


@dataclass(frozen=True)
class _Blob:
    sha: str
    text: str


class GiteaBackend:
    """One branch of one Gitea repository (see the module docs)."""

    def __init__(
        self,
        *,
        base_url: str,
        owner: str,
        repo: str,
        branch: str,
        token: str,
        author: Identity | None = None,
        push_attempts: int = 5,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not token:
            raise ConfigError("the Gitea backend needs an access token")
        if push_attempts < 1:
            raise ConfigError("push_attempts must be at least 1")
        self._token = token
        self._branch = branch
        self._author = author or Identity()
        self._push_attempts = push_attempts
        self._repo_path = f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"
        self._name = f"{owner}/{repo}@{branch}"
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"token {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"GiteaBackend({self._name!r})"

    # ------------------------------------------------------------------ GitBackend API

    async def head(self) -> str:
        data = await self._json("GET", f"/branches/{quote(self._branch, safe='')}")
        return str(data["commit"]["id"])

    async def read_file(self, path: str, ref: str | None = None) -> FileContent:
        check_repo_path(path)
        commit = await self._resolve(ref)
        blob = await self._blob(commit, path)
        if blob is None:
            raise GitNotFoundError(f"{path} does not exist at commit {commit[:12]}")
        return FileContent(path=path, text=blob.text, sha=blob.sha, commit=commit)

    async def list_files(self, prefix: str = "") -> list[str]:
        head = await self.head()
        names: list[str] = []
        listed = 0
        page = 1
        while True:  # the server may cap per_page below what is asked: follow "truncated"
            data = await self._json(
                "GET",
                f"/git/trees/{head}",
                params={"recursive": "true", "page": page, "per_page": 1000},
            )
            entries = data.get("tree") or []
            names += [e["path"] for e in entries if e.get("type") == "blob"]
            listed += len(entries)
            if not data.get("truncated") or not entries or listed >= int(data["total_count"]):
                break
            page += 1
        return sorted(n for n in names if n.startswith(prefix))

    async def commit_files(
        self, changes: Mapping[str, str], message: str, expected_parent: str | None = None
    ) -> CommitResult:
        if not changes:
            raise ConfigError("commit_files needs at least one file to change")
        for path in changes:
            check_repo_path(path)
        try:
            for attempt in range(1, self._push_attempts + 1):
                head = await self.head()
                current = {path: await self._blob(head, path) for path in changes}
                todo = {
                    path: text for path, text in changes.items() if _text(current[path]) != text
                }
                if not todo:
                    log.info("%s: change already on %s at %s", self, self._branch, head)
                    return CommitResult(sha=head, created=False)
                if expected_parent and expected_parent != head:
                    await self._check_unchanged_since(expected_parent, current, todo)
                operations = [
                    _operation(path, text, current[path]) for path, text in sorted(todo.items())
                ]
                sha = await self._change_files(operations, message)
                if sha is not None:
                    log.info("%s: committed %s to %s", self, sha[:12], self._branch)
                    return CommitResult(sha=sha, created=True)
                log.warning(
                    "%s: %s moved on while committing (attempt %d/%d); re-reading",
                    self,
                    self._branch,
                    attempt,
                    self._push_attempts,
                )
        except GitAuthError as exc:
            raise PushRejectedError(f"{exc}; nothing was committed") from None
        raise PushRejectedError(
            f"the commit to {self._branch} was still rejected after {self._push_attempts} "
            "attempts because the branch kept moving; try again later"
        )

    async def find_commit(
        self, trailer_key: str, trailer_value: str, limit: int = 50
    ) -> str | None:
        check_trailer_key(trailer_key)
        size = max(1, min(_PAGE, limit))  # one page size throughout: Gitea pages by offset
        seen = 0
        page = 1
        while seen < limit:
            params = {"sha": self._branch, "limit": size, "page": page, "stat": "false",
                      "verification": "false", "files": "false"}
            response = await self._send("GET", "/commits", params=params)
            if response.status_code >= 300:
                raise self._error("GET", "/commits", response)
            commits = _json_body(response, "/commits")
            for commit in commits[: limit - seen]:
                if message_has_trailer(commit["commit"]["message"], trailer_key, trailer_value):
                    return str(commit["sha"])
            seen += len(commits)
            # A short page is not the end: the server caps pages at its COMMITS_RANGE_SIZE
            # and MAX_RESPONSE_ITEMS, which may be below ``size`` (and pages by the capped
            # size); X-HasMore says whether more follow (an empty page, if it is missing).
            if not commits or response.headers.get("X-HasMore", "").lower() == "false":
                break
            page += 1
        return None

    async def revert(self, commit_sha: str, message: str) -> CommitResult:
        try:
            data = await self._json(
                "GET",
                f"/git/commits/{quote(commit_sha, safe='')}",
                params={"stat": "false", "verification": "false", "files": "true"},
            )
            target = str(data["sha"])
            parents = [str(p["sha"]) for p in data.get("parents") or []]
            if len(parents) != 1:
                raise GitError(
                    f"commit {target[:12]} is a merge or root commit; FluxUp only reverts "
                    "its own single-parent commits - commit the previous version instead"
                )
            paths = sorted({str(f["filename"]) for f in data.get("files") or []})
            for attempt in range(1, self._push_attempts + 1):
                head = await self.head()
                operations = []
                for path in paths:
                    before = await self._blob(parents[0], path)
                    after = await self._blob(target, path)
                    now = await self._blob(head, path)
                    if _text(now) == _text(before):
                        continue  # this file is already back
                    if _text(now) != _text(after):
                        raise GitConflictError(
                            f"reverting {target[:12]} conflicts with later changes of {path} "
                            f"on {self._branch}; commit the previous version forward instead"
                        )
                    operations.append(_operation(path, _text(before), now))
                if not operations:
                    log.info("%s: %s is already reverted", self, target[:12])
                    return CommitResult(sha=head, created=False)
                sha = await self._change_files(operations, message)
                if sha is not None:
                    return CommitResult(sha=sha, created=True)
                log.warning("%s: branch moved while reverting (attempt %d)", self, attempt)
        except GitAuthError as exc:
            raise PushRejectedError(f"{exc}; nothing was committed") from None
        raise PushRejectedError(
            f"the revert on {self._branch} was still rejected after {self._push_attempts} "
            "attempts because the branch kept moving; try again later"
        )

    async def diff_preview(self, changes: Mapping[str, str]) -> str:
        head = await self.head()
        parts = []
        for path, text in sorted(changes.items()):
            check_repo_path(path)
            parts.append(render_diff(path, _text(await self._blob(head, path)), text))
        return "".join(parts)

    async def aclose(self) -> None:
        await self._client.aclose()

    # ------------------------------------------------------------------ steps

    async def _resolve(self, ref: str | None) -> str:
        if ref is None or ref == self._branch:
            return await self.head()
        if _SHA.match(ref):
            return ref
        commits = await self._json(
            "GET", "/commits", params={"sha": ref, "limit": 1, "stat": "false", "files": "false"}
        )
        if not commits:
            raise GitNotFoundError(f"{ref} does not name a commit in {self._name}")
        return str(commits[0]["sha"])

    async def _blob(self, commit: str, path: str) -> _Blob | None:
        """The file at ``commit``, or None when it does not exist there."""
        try:
            data = await self._json(
                "GET", f"/contents/{quote(path, safe='/')}", params={"ref": commit}
            )
        except GitNotFoundError:
            return None
        if not isinstance(data, dict) or data.get("type") != "file":
            raise GitError(f"{path} at {commit[:12]} is not a file (a directory or a link)")
        try:
            text = base64.b64decode(data.get("content") or "").decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise GitError(f"{path} at {commit[:12]} is not UTF-8 text") from None
        return _Blob(sha=str(data["sha"]), text=text)

    async def _check_unchanged_since(
        self, parent: str, current: Mapping[str, _Blob | None], todo: Mapping[str, str]
    ) -> None:
        """Raise GitConflictError when a file to change differs between ``parent`` (what
        the caller edited) and the head (what the commit would overwrite)."""
        for path in todo:
            if _text(await self._blob(parent, path)) != _text(current[path]):
                raise GitConflictError(
                    f"{path} was changed on {self._branch} after {parent[:12]}; re-read the "
                    "files and make the change again"
                )

    async def _change_files(self, operations: list[dict[str, str]], message: str) -> str | None:
        """POST one atomic commit; its sha, or None when a blob sha was stale (retry)."""
        identity = {"name": self._author.name, "email": self._author.email}
        body = {
            "branch": self._branch,
            "message": message,
            "author": identity,
            "committer": identity,
            "files": operations,
        }
        response = await self._send("POST", "/contents", json=body)
        if response.status_code in (200, 201):
            return str(response.json()["commit"]["sha"])
        detail = self._detail(response)
        lost_race = ("sha does not match", "already exists")  # a blob changed or appeared
        if response.status_code == 409 or (
            response.status_code == 422 and any(m in detail.lower() for m in lost_race)
        ):
            return None
        if response.status_code in (401, 403):
            raise PushRejectedError(
                f"Gitea refused the commit to {self._name} (HTTP {response.status_code}: "
                f"{detail}); check the token's permissions and the branch protection"
            )
        raise self._error("POST", "/contents", response)

    # ------------------------------------------------------------------ HTTP plumbing

    async def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self._send(method, url, **kwargs)
        if response.status_code >= 300:
            raise self._error(method, url, response)
        return _json_body(response, url)

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.request(method, self._repo_path + url, **kwargs)
        except httpx.HTTPError as exc:
            raise GitError(
                f"Gitea {method} {self._name}{url}: {self._redact(str(exc)) or type(exc).__name__}"
            ) from None

    def _error(self, method: str, url: str, response: httpx.Response) -> GitError:
        detail = self._detail(response)
        where = f"Gitea {method} {self._name}{url}"
        if response.status_code == 401:
            return GitAuthError(
                f"{where}: Gitea refused FluxUp's token (HTTP 401); check the Git "
                "credentials Secret"
            )
        if response.status_code == 403:
            return PushRejectedError(
                f"{where}: HTTP 403 ({detail}); check the token's permissions (scopes) and "
                "the branch protection"
            )
        if response.status_code == 404:
            return GitNotFoundError(f"{where}: not found ({detail})")
        return GitError(f"{where}: HTTP {response.status_code}: {detail}")

    def _detail(self, response: httpx.Response) -> str:
        try:
            data = response.json()
            text = str(data.get("message") or data) if isinstance(data, dict) else str(data)
        except ValueError:
            text = response.text
        return self._redact(text.strip())[:300]

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***")


def _json_body(response: httpx.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise GitError(f"Gitea {response.request.method} {url}: the answer is not JSON") from None


def _text(blob: _Blob | None) -> str | None:
    return blob.text if blob is not None else None


def _operation(path: str, text: str | None, current: _Blob | None) -> dict[str, str]:
    """One ``ChangeFileOperation``: ``text=None`` deletes, ``current=None`` creates."""
    if text is None:
        if current is None:
            raise GitError(f"cannot delete {path}: it does not exist on the branch")
        return {"operation": "delete", "path": path, "sha": current.sha}
    content = base64.b64encode(text.encode("utf-8")).decode("ascii")
    if current is None:
        return {"operation": "create", "path": path, "content": content}
    return {"operation": "update", "path": path, "content": content, "sha": current.sha}
