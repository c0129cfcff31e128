"""Git backend that drives the plain ``git`` program: works with any forge.

The operator builds one :class:`GitCliBackend` per repository and branch. It keeps a
cached clone in ``workdir`` (fetched before every operation that needs the remote's
state) and runs every git command with :func:`asyncio.create_subprocess_exec`; nothing
here blocks the event loop. Operations on one backend are serialized by a lock; use one
backend (and one ``workdir``) per repository and branch.

This module holds the backend's API, the lock and the clone's link to the remote
(fetch, resolve); the rest lives in:

* :mod:`fluxup.adapters.git.cli_commits`: commits built with plumbing (blobs, a temporary
  index, ``commit-tree``) on top of the commit the caller read the files at, so file bytes
  go into Git exactly as given (no clean/eol filters); a push that loses a race is rebased
  onto the new head in the work tree and pushed again; when the change turns out to be
  there already, nothing more is pushed.
* :mod:`fluxup.adapters.git.cli_process`: the one place git is started, its failures
  classified and redacted.
* :mod:`fluxup.adapters.git.cli_env`: the environment git runs with (no system or global
  config, no credential helpers, no terminal prompts, ``LC_ALL=C``) and the credentials.
  HTTPS :class:`HttpCredentials` become an ``Authorization: Basic`` header passed through
  ``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` environment variables, scoped to the remote
  URL: never in the URL, the command line, the clone's config, logs or exception
  messages. SSH :class:`SshCredentials` are written to a private temporary directory (key
  file 0600) for the duration of one remote command and used via ``GIT_SSH_COMMAND``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from fluxup.adapters.git import cli_commits as commits
from fluxup.adapters.git.base import (
    CommitResult,
    FileContent,
    Identity,
    check_repo_path,
    check_trailer_key,
)
from fluxup.adapters.git.cli_env import HttpCredentials, SshCredentials
from fluxup.adapters.git.cli_process import GitProcess
from fluxup.errors import (
    ConfigError,
    GitAuthError,
    GitConflictError,
    GitError,
    GitNotFoundError,
    PushRejectedError,
)

__all__ = ["GitCliBackend", "HttpCredentials", "SshCredentials"]

log = logging.getLogger(__name__)

_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*\Z")
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/^~-]*\Z")


class GitCliBackend:
    """One branch of one repository, through the ``git`` program (see module docs)."""

    def __init__(
        self,
        *,
        url: str,
        branch: str,
        workdir: Path,
        credentials: HttpCredentials | SshCredentials | None = None,
        author: Identity | None = None,
        push_attempts: int = 5,
        timeout: float = 120.0,
        git: str = "git",
        ssh: str = "ssh",
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and (parts.username or parts.password):
            raise ConfigError(
                "the Git repository URL contains credentials; remove them from the URL and "
                "put them in the credentials Secret"
            )
        if not _BRANCH.match(branch) or ".." in branch:
            raise ConfigError(f"{branch!r} is not a valid Git branch name")
        if isinstance(credentials, SshCredentials) and not (credentials.known_hosts or "").strip():
            raise ConfigError(
                "an SSH key without known_hosts: FluxUp never trusts a host key on first "
                "use; add the server's known_hosts line to the credentials Secret"
            )
        if push_attempts < 1:
            raise ConfigError("push_attempts must be at least 1")
        self._url = url
        self._branch = branch
        self._workdir = workdir
        self._push_attempts = push_attempts
        self._lock = asyncio.Lock()
        self._ready = False
        self._git = GitProcess(
            name=repr(self),
            url=url,
            workdir=workdir,
            credentials=credentials,
            author=author or Identity(),
            timeout=timeout,
            git=git,
            ssh=ssh,
        )

    def __repr__(self) -> str:
        return f"GitCliBackend(url={self._url!r}, branch={self._branch!r})"

    # ------------------------------------------------------------------ GitBackend API

    async def head(self) -> str:
        async with self._lock:
            await self._ensure_repo()
            return await self._require_head()

    async def read_file(self, path: str, ref: str | None = None) -> FileContent:
        check_repo_path(path)
        async with self._lock:
            await self._ensure_repo()
            commit = await self._require_head() if ref is None else await self._resolve(ref)
            found = await self._git.run(["rev-parse", "--verify", "--quiet", f"{commit}:{path}"])
            blob = found.out.strip()
            kind = await self._git.run(["cat-file", "-t", blob]) if found.returncode == 0 else None
            if kind is None or kind.out.strip() != "blob":
                raise GitNotFoundError(f"{path} does not exist at commit {commit[:12]}")
            data = (await self._git.run(["cat-file", "blob", blob], check=True)).stdout
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise GitError(f"{path} at {commit[:12]} is not UTF-8 text") from None
        return FileContent(path=path, text=text, sha=blob, commit=commit)

    async def list_files(self, prefix: str = "") -> list[str]:
        async with self._lock:
            await self._ensure_repo()
            head = await self._fetch()
            if head is None:
                return []
            run = await self._git.run(["ls-tree", "-r", "-z", "--name-only", head], check=True)
        names = [n for n in run.out.split("\0") if n and n.startswith(prefix)]
        return sorted(names)

    async def commit_files(
        self, changes: Mapping[str, str], message: str, expected_parent: str | None = None
    ) -> CommitResult:
        if not changes:
            raise ConfigError("commit_files needs at least one file to change")
        for path in changes:
            check_repo_path(path)
        async with self._lock:
            try:
                await self._ensure_repo()
                head = await self._fetch()
                if await commits.already_applied(self._git, head, changes):
                    log.info("%s: change already on %s at %s", self, self._branch, head)
                    return CommitResult(sha=head or "", created=False)
                base = head
                if expected_parent and expected_parent != head:
                    base = await self._resolve(expected_parent)
                tree = await commits.tree_with(self._git, base, changes)
                if (
                    base is not None
                    and base != head
                    and tree == await commits.tree_of(self._git, base)
                ):
                    raise GitConflictError(
                        f"the files already had these contents at {base[:12]} but were changed "
                        f"on {self._branch} since; re-read them and edit again"
                    )
                commit = await commits.commit_tree(self._git, tree, base, message)
                return await self._push(commit, changes)
            except GitAuthError as exc:
                raise PushRejectedError(f"{exc}; nothing was pushed") from None

    async def find_commit(
        self, trailer_key: str, trailer_value: str, limit: int = 50
    ) -> str | None:
        check_trailer_key(trailer_key)
        async with self._lock:
            await self._ensure_repo()
            head = await self._fetch()
            if head is None:
                return None
            fmt = (
                f"--format=%H%x1f%(trailers:key={trailer_key},valueonly,unfold,separator=%x1e)%x1d"
            )
            run = await self._git.run(["log", f"-n{max(limit, 1)}", fmt, head, "--"], check=True)
        for record in run.out.split("\x1d"):
            sha, _, values = record.strip("\n").partition("\x1f")
            if sha and trailer_value in (v.strip() for v in values.split("\x1e")):
                return sha
        return None

    async def revert(self, commit_sha: str, message: str) -> CommitResult:
        async with self._lock:
            try:
                await self._ensure_repo()
                head = await self._require_head()
                target = await self._resolve(commit_sha)
                parents = (
                    await self._git.run(["rev-list", "--parents", "-n1", target])
                ).out.split()
                if len(parents) != 2:
                    raise GitError(
                        f"commit {target[:12]} is a merge or root commit; FluxUp only reverts "
                        "its own single-parent commits - commit the previous version instead"
                    )
                ancestor = await self._git.run(["merge-base", "--is-ancestor", target, head])
                if ancestor.returncode != 0:
                    raise GitNotFoundError(
                        f"commit {target[:12]} is not on branch {self._branch}; nothing to revert"
                    )
                await self._git.run(["checkout", "-q", "-f", "--detach", head], check=True)
                run = await self._git.run(["revert", "--no-commit", "--no-edit", target])
                if run.returncode != 0:
                    await self._git.run(["revert", "--abort"])
                    await self._git.run(["reset", "-q", "--hard", head])
                    if "conflict" in (run.stderr + run.out).lower():
                        raise GitConflictError(
                            f"reverting {target[:12]} conflicts with later changes on "
                            f"{self._branch}; commit the previous version forward instead"
                        )
                    raise self._git.error(["revert"], run)
                staged = await self._git.run(["diff", "--cached", "--quiet"])
                if staged.returncode == 0:
                    await self._git.run(["reset", "-q", "--hard", head])
                    log.info("%s: %s is already reverted on %s", self, target[:12], self._branch)
                    return CommitResult(sha=head, created=False)
                await self._git.run(["commit", "-q", "--no-verify", "-F", "-"], message, check=True)
                commit = (await self._git.run(["rev-parse", "HEAD"], check=True)).out.strip()
                return await self._push(commit, None)
            except GitAuthError as exc:
                raise PushRejectedError(f"{exc}; nothing was pushed") from None

    async def diff_preview(self, changes: Mapping[str, str]) -> str:
        for path in changes:
            check_repo_path(path)
        async with self._lock:
            await self._ensure_repo()
            head = await self._fetch()
            tree = await commits.tree_with(self._git, head, changes)
            old = head or (await self._git.run(["hash-object", "-t", "tree", "--stdin"], "")).out
            run = await self._git.run(
                ["diff", "--no-color", "--no-ext-diff", "--no-renames", old.strip(), tree, "--"],
                check=True,
            )
        return run.out

    async def aclose(self) -> None:
        """Nothing to release: temporary files live only as long as one command."""

    # ------------------------------------------------------------------ the clone and the remote

    async def _ensure_repo(self) -> None:
        if self._ready:
            return
        exists = await asyncio.to_thread((self._workdir / ".git").is_dir)
        if not exists:
            await asyncio.to_thread(self._workdir.mkdir, parents=True, exist_ok=True)
            await self._git.run(["init", "-q"], check=True)
        current = await self._git.run(["remote", "get-url", "origin"])
        if current.returncode != 0:
            await self._git.run(["remote", "add", "origin", self._url], check=True)
        elif current.out.strip() != self._url:
            await self._git.run(["remote", "set-url", "origin", self._url], check=True)
        self._ready = True

    async def _fetch(self) -> str | None:
        """Fetch the branch; its head, or None when the branch does not exist yet."""
        tracking = f"refs/remotes/origin/{self._branch}"
        refspec = f"+refs/heads/{self._branch}:{tracking}"
        async with self._git.remote_env() as env:
            run = await self._git.run(
                ["fetch", "--quiet", "--prune", "--no-tags", "origin", refspec], env=env
            )
        if run.returncode != 0:
            if "couldn't find remote ref" in run.stderr.lower():
                await self._git.run(["update-ref", "-d", tracking])
                return None
            raise self._git.error(["fetch"], run)
        return (await self._git.run(["rev-parse", "--verify", tracking], check=True)).out.strip()

    async def _require_head(self) -> str:
        head = await self._fetch()
        if head is None:
            raise GitNotFoundError(f"branch {self._branch} does not exist in the repository")
        return head

    async def _resolve(self, ref: str) -> str:
        """The commit ``ref`` names (a sha, a branch of the remote); fetches when unknown."""
        if not _REF.match(ref) or ".." in ref:
            raise ConfigError(f"{ref!r} is not a Git commit or branch name")
        if ref == self._branch:
            return await self._require_head()
        for attempt in range(2):
            for candidate in (ref, f"refs/remotes/origin/{ref}"):
                run = await self._git.run(
                    ["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"]
                )
                if run.returncode == 0:
                    return run.out.strip()
            if attempt == 0:
                await self._fetch()
        raise GitNotFoundError(f"commit {ref} does not exist in the repository")

    async def _push(self, commit: str, changes: Mapping[str, str] | None) -> CommitResult:
        """Push ``commit`` to the branch (see :func:`~fluxup.adapters.git.cli_commits.push`)."""
        return await commits.push(
            self._git,
            commit,
            changes,
            branch=self._branch,
            attempts=self._push_attempts,
            fetch=self._fetch,
        )
