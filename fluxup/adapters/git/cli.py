"""Git backend that drives the plain ``git`` program: works with any forge.

The operator builds one :class:`GitCliBackend` per repository and branch. It keeps a
cached clone in ``workdir`` (fetched before every operation that needs the remote's
state) and runs every git command with :func:`asyncio.create_subprocess_exec`; nothing
here blocks the event loop. Operations on one backend are serialized by a lock; use one
backend (and one ``workdir``) per repository and branch.

Commits are built with plumbing (blobs, a temporary index, ``commit-tree``) on top of the
commit the caller read the files at, so file bytes go into Git exactly as given (no
clean/eol filters). A push that loses a race is rebased onto the new head in the work
tree and pushed again; when the change turns out to be there already, nothing more is
pushed.

Credentials:

* HTTPS: :class:`HttpCredentials` become an ``Authorization: Basic`` header passed to git
  through ``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` environment variables, scoped to the
  remote URL. They are never put in the URL, the command line, the clone's config, logs or
  exception messages; git's stderr is redacted before it is raised or logged.
* SSH: :class:`SshCredentials` are written to a private temporary directory (key file
  0600) for the duration of one remote command and used via ``GIT_SSH_COMMAND``.

Git runs with a minimal environment: no system or global config, no credential helpers,
no terminal prompts, ``LC_ALL=C`` (so its messages can be classified).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from fluxup.adapters.git.base import (
    CommitResult,
    FileContent,
    Identity,
    check_repo_path,
    check_trailer_key,
)
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
_AUTH_FAILURES = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "permission denied (publickey",
    "returned error: 401",
    "returned error: 403",
    "invalid username or password",
    "access denied",
)
_WORK_BRANCH_CONFIG = (
    ("credential.helper", ""),
    ("core.autocrlf", "false"),
    ("core.hooksPath", os.devnull),
    ("commit.gpgSign", "false"),
    ("gc.auto", "0"),
    ("advice.detachedHead", "false"),
    ("rebase.autoStash", "false"),
)


@dataclass(frozen=True)
class HttpCredentials:
    """Username and password (or access token) for Git over HTTP(S)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class SshCredentials:
    """A private key for Git over SSH; ``known_hosts`` lines pin the server's host key
    (required: like Flux, FluxUp never trusts a host key on first use)."""

    private_key: str = field(repr=False)
    known_hosts: str | None = None


@dataclass(frozen=True)
class _Run:
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


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
        self._credentials = credentials
        self._author = author or Identity()
        self._push_attempts = push_attempts
        self._timeout = timeout
        self._git = git
        self._ssh = ssh
        self._lock = asyncio.Lock()
        self._ready = False
        self._secrets: list[str] = []
        if isinstance(credentials, HttpCredentials):
            basic = f"{credentials.username}:{credentials.password}"
            self._secrets = [basic, base64.b64encode(basic.encode()).decode(), credentials.password]
        self._secrets = sorted({s for s in self._secrets if s}, key=len, reverse=True)

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
            found = await self._run(["rev-parse", "--verify", "--quiet", f"{commit}:{path}"])
            blob = found.out.strip()
            kind = await self._run(["cat-file", "-t", blob]) if found.returncode == 0 else None
            if kind is None or kind.out.strip() != "blob":
                raise GitNotFoundError(f"{path} does not exist at commit {commit[:12]}")
            data = (await self._run(["cat-file", "blob", blob], check=True)).stdout
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
            run = await self._run(["ls-tree", "-r", "-z", "--name-only", head], check=True)
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
                if await self._already_applied(head, changes):
                    log.info("%s: change already on %s at %s", self, self._branch, head)
                    return CommitResult(sha=head or "", created=False)
                base = head
                if expected_parent and expected_parent != head:
                    base = await self._resolve(expected_parent)
                tree = await self._tree_with(base, changes)
                if base is not None and base != head and tree == await self._tree_of(base):
                    raise GitConflictError(
                        f"the files already had these contents at {base[:12]} but were changed "
                        f"on {self._branch} since; re-read them and edit again"
                    )
                commit = await self._commit_tree(tree, base, message)
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
            run = await self._run(["log", f"-n{max(limit, 1)}", fmt, head, "--"], check=True)
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
                parents = (await self._run(["rev-list", "--parents", "-n1", target])).out.split()
                if len(parents) != 2:
                    raise GitError(
                        f"commit {target[:12]} is a merge or root commit; FluxUp only reverts "
                        "its own single-parent commits - commit the previous version instead"
                    )
                ancestor = await self._run(["merge-base", "--is-ancestor", target, head])
                if ancestor.returncode != 0:
                    raise GitNotFoundError(
                        f"commit {target[:12]} is not on branch {self._branch}; nothing to revert"
                    )
                await self._run(["checkout", "-q", "-f", "--detach", head], check=True)
                run = await self._run(["revert", "--no-commit", "--no-edit", target])
                if run.returncode != 0:
                    await self._run(["revert", "--abort"])
                    await self._run(["reset", "-q", "--hard", head])
                    if "conflict" in (run.stderr + run.out).lower():
                        raise GitConflictError(
                            f"reverting {target[:12]} conflicts with later changes on "
                            f"{self._branch}; commit the previous version forward instead"
                        )
                    raise self._error(["revert"], run)
                staged = await self._run(["diff", "--cached", "--quiet"])
                if staged.returncode == 0:
                    await self._run(["reset", "-q", "--hard", head])
                    log.info("%s: %s is already reverted on %s", self, target[:12], self._branch)
                    return CommitResult(sha=head, created=False)
                await self._run(["commit", "-q", "--no-verify", "-F", "-"], message, check=True)
                commit = (await self._run(["rev-parse", "HEAD"], check=True)).out.strip()
                return await self._push(commit, None)
            except GitAuthError as exc:
                raise PushRejectedError(f"{exc}; nothing was pushed") from None

    async def diff_preview(self, changes: Mapping[str, str]) -> str:
        for path in changes:
            check_repo_path(path)
        async with self._lock:
            await self._ensure_repo()
            head = await self._fetch()
            tree = await self._tree_with(head, changes)
            old = head or (await self._run(["hash-object", "-t", "tree", "--stdin"], "")).out
            run = await self._run(
                ["diff", "--no-color", "--no-ext-diff", "--no-renames", old.strip(), tree, "--"],
                check=True,
            )
        return run.out

    async def aclose(self) -> None:
        """Nothing to release: temporary files live only as long as one command."""

    # ------------------------------------------------------------------ steps

    async def _ensure_repo(self) -> None:
        if self._ready:
            return
        exists = await asyncio.to_thread((self._workdir / ".git").is_dir)
        if not exists:
            await asyncio.to_thread(self._workdir.mkdir, parents=True, exist_ok=True)
            await self._run(["init", "-q"], check=True)
        current = await self._run(["remote", "get-url", "origin"])
        if current.returncode != 0:
            await self._run(["remote", "add", "origin", self._url], check=True)
        elif current.out.strip() != self._url:
            await self._run(["remote", "set-url", "origin", self._url], check=True)
        self._ready = True

    async def _fetch(self) -> str | None:
        """Fetch the branch; its head, or None when the branch does not exist yet."""
        tracking = f"refs/remotes/origin/{self._branch}"
        refspec = f"+refs/heads/{self._branch}:{tracking}"
        async with self._remote_env() as env:
            run = await self._run(
                ["fetch", "--quiet", "--prune", "--no-tags", "origin", refspec], env=env
            )
        if run.returncode != 0:
            if "couldn't find remote ref" in run.stderr.lower():
                await self._run(["update-ref", "-d", tracking])
                return None
            raise self._error(["fetch"], run)
        return (await self._run(["rev-parse", "--verify", tracking], check=True)).out.strip()

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
                run = await self._run(
                    ["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"]
                )
                if run.returncode == 0:
                    return run.out.strip()
            if attempt == 0:
                await self._fetch()
        raise GitNotFoundError(f"commit {ref} does not exist in the repository")

    async def _already_applied(self, head: str | None, changes: Mapping[str, str]) -> bool:
        if head is None:
            return False
        current = await self._blobs(head, list(changes))
        for path, text in changes.items():
            wanted = await self._run(["hash-object", "--no-filters", "--stdin"], text, check=True)
            if current.get(path) != wanted.out.strip():
                return False
        return True

    async def _blobs(self, treeish: str, paths: Sequence[str]) -> dict[str, str]:
        """path → blob id at ``treeish`` for those of ``paths`` that exist there."""
        run = await self._run(["ls-tree", "-r", "-z", treeish, "--", *paths], check=True)
        blobs: dict[str, str] = {}
        for entry in run.out.split("\0"):
            meta, _, path = entry.partition("\t")
            if path:
                blobs[path] = meta.split()[2]
        return blobs

    async def _tree_of(self, commit: str) -> str:
        return (await self._run(["rev-parse", f"{commit}^{{tree}}"], check=True)).out.strip()

    async def _tree_with(self, base: str | None, changes: Mapping[str, str]) -> str:
        """The tree of ``base`` with ``changes`` applied (written to the object store)."""
        index = await asyncio.to_thread(
            tempfile.mkstemp, prefix="fluxup-index-", dir=self._workdir / ".git"
        )
        os.close(index[0])
        env = {"GIT_INDEX_FILE": index[1]}
        try:
            await asyncio.to_thread(os.unlink, index[1])  # git wants to create it itself
            if base is None:
                await self._run(["read-tree", "--empty"], env=env, check=True)
            else:
                await self._run(["read-tree", base], env=env, check=True)
            modes = await self._modes(base, list(changes))
            lines = []
            for path, text in changes.items():
                blob = await self._run(
                    ["hash-object", "-w", "--no-filters", "--stdin"], text, check=True
                )
                lines.append(f"{modes.get(path, '100644')} {blob.out.strip()}\t{path}\n")
            await self._run(["update-index", "--index-info"], "".join(lines), env=env, check=True)
            return (await self._run(["write-tree"], env=env, check=True)).out.strip()
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(os.unlink, index[1])

    async def _modes(self, base: str | None, paths: Sequence[str]) -> dict[str, str]:
        if base is None:
            return {}
        run = await self._run(["ls-tree", "-r", "-z", base, "--", *paths], check=True)
        return {
            entry.partition("\t")[2]: entry.split()[0]
            for entry in run.out.split("\0")
            if "\t" in entry
        }

    async def _commit_tree(self, tree: str, parent: str | None, message: str) -> str:
        args = ["commit-tree", tree, "-F", "-"]
        if parent is not None:
            args[2:2] = ["-p", parent]
        return (await self._run(args, message, check=True)).out.strip()

    async def _push(self, commit: str, changes: Mapping[str, str] | None) -> CommitResult:
        """Push ``commit`` to the branch; on a lost race fetch, re-check, rebase, retry."""
        for attempt in range(1, self._push_attempts + 1):
            async with self._remote_env() as env:
                run = await self._run(
                    ["push", "--porcelain", "origin", f"{commit}:refs/heads/{self._branch}"],
                    env=env,
                )
            if run.returncode == 0:
                log.info("%s: pushed %s to %s", self, commit[:12], self._branch)
                return CommitResult(sha=commit, created=True)
            status = self._redact(run.out + "\n" + run.stderr)
            if "[remote rejected]" in status or "protected branch" in status.lower():
                reason = _porcelain_reason(status)
                raise PushRejectedError(
                    f"the Git server refused the push to {self._branch} ({reason}); check the "
                    "branch protection and the permissions of FluxUp's Git credentials"
                )
            if "[rejected]" not in status:
                error = self._error(["push"], run)
                if isinstance(error, GitAuthError):
                    raise PushRejectedError(f"{error}; nothing was pushed")
                raise error
            log.warning(
                "%s: push to %s lost a race (attempt %d/%d); fetching and rebasing",
                self,
                self._branch,
                attempt,
                self._push_attempts,
            )
            head = await self._fetch()
            if head is None:
                continue
            if changes is not None and await self._already_applied(head, changes):
                return CommitResult(sha=head, created=False)
            rebased = await self._rebase(commit, head)
            if rebased is None:
                return CommitResult(sha=head, created=False)
            commit = rebased
        raise PushRejectedError(
            f"the push to {self._branch} was still rejected after {self._push_attempts} "
            "attempts because the branch kept moving; try again later"
        )

    async def _rebase(self, commit: str, onto: str) -> str | None:
        """``commit`` replayed on ``onto``; None when it became empty (already there)."""
        parents = (await self._run(["rev-list", "--parents", "-n1", commit], check=True)).out
        upstream = ["--root"] if len(parents.split()) < 2 else [f"{commit}~1"]
        await self._run(["checkout", "-q", "-f", "--detach", commit], check=True)
        run = await self._run(
            ["rebase", "-q", "--no-autostash", "--empty=drop", "--onto", onto, *upstream]
        )
        if run.returncode != 0:
            await self._run(["rebase", "--abort"])
            await self._run(["reset", "-q", "--hard", onto])
            raise GitConflictError(
                f"the change conflicts with commits pushed to {self._branch} meanwhile; "
                "re-read the files and make the change again"
            )
        rebased = (await self._run(["rev-parse", "HEAD"], check=True)).out.strip()
        return None if rebased == onto else rebased

    # ------------------------------------------------------------------ process plumbing

    @contextlib.asynccontextmanager
    async def _remote_env(self) -> AsyncIterator[dict[str, str]]:
        """Environment for one command that talks to the remote (credentials included)."""
        creds = self._credentials
        if isinstance(creds, HttpCredentials):
            basic = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
            yield {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": f"http.{self._url}.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }
            return
        if not isinstance(creds, SshCredentials):
            yield {}
            return
        directory = await asyncio.to_thread(tempfile.mkdtemp, prefix="fluxup-ssh-")
        try:
            key = Path(directory, "key")
            hosts = Path(directory, "known_hosts")
            await asyncio.to_thread(_write_private, key, creds.private_key.rstrip("\n") + "\n")
            await asyncio.to_thread(_write_private, hosts, creds.known_hosts or "")
            command = [
                self._ssh,
                *("-F", os.devnull, "-i", str(key), "-o", "IdentitiesOnly=yes"),
                *("-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={hosts}"),
                *("-o", "StrictHostKeyChecking=yes"),
            ]
            yield {"GIT_SSH_COMMAND": shlex.join(command), "GIT_SSH_VARIANT": "ssh"}
        finally:
            await asyncio.to_thread(shutil.rmtree, directory, True)

    def _base_env(self) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": str(self._workdir / ".git"),
            "LC_ALL": "C",
            "LANG": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": self._author.name,
            "GIT_AUTHOR_EMAIL": self._author.email,
            "GIT_COMMITTER_NAME": self._author.name,
            "GIT_COMMITTER_EMAIL": self._author.email,
        }
        if "TMPDIR" in os.environ:
            env["TMPDIR"] = os.environ["TMPDIR"]
        return env

    async def _run(
        self,
        args: list[str],
        stdin: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        check: bool = False,
    ) -> _Run:
        """Run ``git <args>`` in the clone; with ``check``, raise on a non-zero exit."""
        full_env = self._base_env()
        extra = dict(env or {})
        count = int(extra.pop("GIT_CONFIG_COUNT", "0"))
        for i, (key, value) in enumerate(_WORK_BRANCH_CONFIG):
            full_env[f"GIT_CONFIG_KEY_{count + i}"] = key
            full_env[f"GIT_CONFIG_VALUE_{count + i}"] = value
        full_env["GIT_CONFIG_COUNT"] = str(count + len(_WORK_BRANCH_CONFIG))
        full_env.update(extra)
        log.debug("%s: git %s", self, args[0])
        proc = await asyncio.create_subprocess_exec(
            self._git,
            *args,
            cwd=self._workdir,
            env=full_env,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(self._timeout):
                out, err = await proc.communicate(
                    stdin.encode("utf-8") if stdin is not None else None
                )
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise GitError(
                f"git {args[0]} did not finish within {self._timeout:.0f}s; is the Git "
                "server reachable?"
            ) from None
        except BaseException:
            if proc.returncode is None:
                proc.kill()
            raise
        code = await proc.wait()  # already exited: communicate() read to the end
        run = _Run(code, out, err.decode("utf-8", errors="replace"))
        if check and run.returncode != 0:
            raise self._error(args, run)
        return run

    def _error(self, args: Sequence[str], run: _Run) -> GitError:
        detail = self._redact(run.stderr.strip() or run.out.strip())[-600:]
        lowered = detail.lower()
        if any(marker in lowered for marker in _AUTH_FAILURES):
            return GitAuthError(
                f"git {args[0]}: the Git server at {self._public_url} refused FluxUp's "
                "credentials; check the Git credentials Secret (token or key and its "
                "permissions)"
            )
        if re.search(
            r"repository (\S+ )?not found|does not appear to be a git repository", lowered
        ):
            return GitNotFoundError(
                f"git {args[0]}: repository {self._public_url} not found: {detail}"
            )
        return GitError(f"git {args[0]} failed (exit {run.returncode}): {detail}")

    @property
    def _public_url(self) -> str:
        return self._redact(self._url)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return re.sub(r"(?<=://)[^/@\s]+@", "***@", text)


def _porcelain_reason(status: str) -> str:
    for line in status.splitlines():
        if line.startswith("!") and "(" in line:
            return line[line.index("(") + 1 :].rstrip(")").strip()
    return "rejected"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
