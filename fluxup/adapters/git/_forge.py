"""What the REST forge backends (GitHub, GitLab) share: HTTP plumbing and file-level
commit/revert logic over a few forge-specific primitives.

A subclass implements :meth:`head`, :meth:`_blob` (a file at a commit, or None),
:meth:`_write` (one atomic commit of several file operations on the branch, or None when
the branch moved and the forge refused it: the caller re-reads and retries) and
:meth:`_commit_info` (a commit's parents and changed paths). On top of those this class
implements :class:`~fluxup.adapters.git.base.GitBackend`'s ``read_file``,
``commit_files``, ``revert`` and ``diff_preview`` with the semantics documented there.

The revert is file-level, as in the Gitea backend: each file the commit changed is
restored to its content before the commit, provided nobody changed it since (otherwise
GitConflictError; the caller commits the previous version forward). That keeps FluxUp's
own message and trailers on the revert commit, which forge revert endpoints do not.

The token is sent in a header only; every message passes :meth:`_redact`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from fluxup.adapters.git.base import (
    CommitResult,
    FileContent,
    Identity,
    check_repo_path,
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

__all__ = ["Blob", "FileOp", "ForgeBackend"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Blob:
    """A file at a commit: its text and the forge's id for it (blob sha, or the id of the
    last commit that changed it, whatever the forge needs to lock an update)."""

    text: str
    sha: str


@dataclass(frozen=True)
class FileOp:
    """One file change of a commit: ``text=None`` deletes; ``current=None`` creates."""

    path: str
    text: str | None
    current: Blob | None


def _text(blob: Blob | None) -> str | None:
    return blob.text if blob is not None else None


class ForgeBackend:
    """Base of the REST forge backends; see the module docs."""

    forge = "forge"

    def __init__(
        self,
        *,
        base_url: str,
        branch: str,
        token: str,
        name: str,
        headers: Mapping[str, str],
        author: Identity | None,
        push_attempts: int,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        if not token:
            raise ConfigError(f"the {self.forge} backend needs an access token")
        if push_attempts < 1:
            raise ConfigError("push_attempts must be at least 1")
        if not branch:
            raise ConfigError(f"the {self.forge} backend needs a branch")
        self._token = token
        self._branch = branch
        self._author = author or Identity()
        self._push_attempts = push_attempts
        self._name = f"{name}@{branch}"
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=dict(headers),
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._name!r})"

    # ------------------------------------------------------------------ primitives

    async def head(self) -> str:
        raise NotImplementedError

    async def _resolve(self, ref: str | None) -> str:
        raise NotImplementedError

    async def _blob(self, commit: str, path: str) -> Blob | None:
        raise NotImplementedError

    async def _write(self, head: str, ops: list[FileOp], message: str) -> str | None:
        raise NotImplementedError

    async def _commit_info(self, sha: str) -> tuple[str, list[str], list[str]]:
        """``(full sha, parent shas, changed paths)`` of a commit."""
        raise NotImplementedError

    # ------------------------------------------------------------------ GitBackend API

    async def read_file(self, path: str, ref: str | None = None) -> FileContent:
        check_repo_path(path)
        commit = await self._resolve(ref)
        blob = await self._blob(commit, path)
        if blob is None:
            raise GitNotFoundError(f"{path} does not exist at commit {commit[:12]}")
        return FileContent(path=path, text=blob.text, sha=blob.sha, commit=commit)

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
                todo = {p: t for p, t in changes.items() if _text(current[p]) != t}
                if not todo:
                    log.info("%s: change already on %s at %s", self, self._branch, head)
                    return CommitResult(sha=head, created=False)
                if expected_parent and expected_parent != head:
                    for path in todo:
                        if _text(await self._blob(expected_parent, path)) != _text(current[path]):
                            raise GitConflictError(
                                f"{path} was changed on {self._branch} after "
                                f"{expected_parent[:12]}; re-read the files and make the "
                                "change again"
                            )
                ops = [FileOp(p, t, current[p]) for p, t in sorted(todo.items())]
                sha = await self._write(head, ops, message)
                if sha is not None:
                    log.info("%s: committed %s to %s", self, sha[:12], self._branch)
                    return CommitResult(sha=sha, created=True)
                log.warning("%s: %s moved on while committing (attempt %d/%d); re-reading",
                            self, self._branch, attempt, self._push_attempts)
        except GitAuthError as exc:
            raise PushRejectedError(f"{exc}; nothing was committed") from None
        raise PushRejectedError(
            f"the commit to {self._branch} was still rejected after {self._push_attempts} "
            "attempts because the branch kept moving; try again later"
        )

    async def revert(self, commit_sha: str, message: str) -> CommitResult:
        try:
            target, parents, paths = await self._commit_info(commit_sha)
            if len(parents) != 1:
                raise GitError(
                    f"commit {target[:12]} is a merge or root commit; FluxUp only reverts "
                    "its own single-parent commits - commit the previous version instead"
                )
            for attempt in range(1, self._push_attempts + 1):
                head = await self.head()
                ops = []
                for path in sorted(set(paths)):
                    before = await self._blob(parents[0], path)
                    after = await self._blob(target, path)
                    now = await self._blob(head, path)
                    if _text(now) == _text(before):
                        continue  # already back
                    if _text(now) != _text(after):
                        raise GitConflictError(
                            f"reverting {target[:12]} conflicts with later changes of {path} "
                            f"on {self._branch}; commit the previous version forward instead"
                        )
                    ops.append(FileOp(path, _text(before), now))
                if not ops:
                    log.info("%s: %s is already reverted", self, target[:12])
                    return CommitResult(sha=head, created=False)
                sha = await self._write(head, ops, message)
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

    # ------------------------------------------------------------------ HTTP plumbing

    async def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self._send(method, url, **kwargs)
        if response.status_code >= 300:
            raise self._error(method, url, response)
        try:
            return response.json()
        except ValueError:
            raise GitError(f"{self.forge} {method} {url}: the answer is not JSON") from None

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise GitError(
                f"{self.forge} {method} {self._name}: "
                f"{self._redact(str(exc)) or type(exc).__name__}"
            ) from None

    def _error(self, method: str, url: str, response: httpx.Response) -> GitError:
        detail = self._detail(response)
        where = f"{self.forge} {method} {url}"
        if response.status_code == 401:
            return GitAuthError(
                f"{where}: {self.forge} refused FluxUp's token (HTTP 401); check the Git "
                "credentials Secret"
            )
        if response.status_code == 403:
            return PushRejectedError(
                f"{where}: HTTP 403 ({detail}); check the token's permissions and the "
                "branch protection"
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
