"""Runs the ``git`` program in one clone and turns its failures into FluxUp's errors.

:class:`GitProcess` is the one place the :class:`~fluxup.adapters.git.cli.GitCliBackend`
starts git: :func:`asyncio.create_subprocess_exec` with a timeout (nothing blocks the
event loop), the environment of :mod:`fluxup.adapters.git.cli_env` plus settings that
keep the clone's work branch predictable (no credential helpers, hooks, signing, eol
conversion or auto-gc), and git's stderr classified (credentials refused, repository not
found, other) and redacted before it is raised or logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fluxup.adapters.git.base import Identity
from fluxup.adapters.git.cli_env import (
    HttpCredentials,
    SshCredentials,
    base_env,
    redact,
    remote_env,
    secrets_of,
)
from fluxup.errors import GitAuthError, GitError, GitNotFoundError

__all__ = ["GitProcess", "GitRun"]

log = logging.getLogger(__name__)

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
class GitRun:
    """How one git command ended: exit code, raw stdout, decoded stderr."""

    returncode: int
    stdout: bytes
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


class GitProcess:
    """Starts git in ``workdir`` for the repository at ``url``; ``name`` prefixes its logs."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        workdir: Path,
        credentials: HttpCredentials | SshCredentials | None,
        author: Identity,
        timeout: float,
        git: str,
        ssh: str,
    ) -> None:
        self.name = name
        self.workdir = workdir
        self._url = url
        self._credentials = credentials
        self._author = author
        self._timeout = timeout
        self._git = git
        self._ssh = ssh
        self._secrets = secrets_of(credentials)

    def remote_env(self) -> contextlib.AbstractAsyncContextManager[dict[str, str]]:
        """Environment for one command that talks to the remote (credentials included)."""
        return remote_env(self._credentials, self._url, self._ssh)

    async def run(
        self,
        args: list[str],
        stdin: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        check: bool = False,
    ) -> GitRun:
        """Run ``git <args>`` in the clone; with ``check``, raise on a non-zero exit."""
        full_env = base_env(self.workdir / ".git", self._author)
        extra = dict(env or {})
        count = int(extra.pop("GIT_CONFIG_COUNT", "0"))
        for i, (key, value) in enumerate(_WORK_BRANCH_CONFIG):
            full_env[f"GIT_CONFIG_KEY_{count + i}"] = key
            full_env[f"GIT_CONFIG_VALUE_{count + i}"] = value
        full_env["GIT_CONFIG_COUNT"] = str(count + len(_WORK_BRANCH_CONFIG))
        full_env.update(extra)
        log.debug("%s: git %s", self.name, args[0])
        proc = await asyncio.create_subprocess_exec(
            self._git,
            *args,
            cwd=self.workdir,
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
        run = GitRun(code, out, err.decode("utf-8", errors="replace"))
        if check and run.returncode != 0:
            raise self.error(args, run)
        return run

    def error(self, args: Sequence[str], run: GitRun) -> GitError:
        """The error a failed ``git <args>`` stands for, its output redacted."""
        detail = self.redact(run.stderr.strip() or run.out.strip())[-600:]
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

    def redact(self, text: str) -> str:
        """``text`` without the credentials (see :func:`~fluxup.adapters.git.cli_env.redact`)."""
        return redact(text, self._secrets)

    @property
    def _public_url(self) -> str:
        return self.redact(self._url)
