"""What the ``git`` program is given: its environment, the credentials, and their redaction.

Used by :class:`~fluxup.adapters.git.cli_process.GitProcess` for every command the
:class:`~fluxup.adapters.git.cli.GitCliBackend` runs.

* :func:`base_env` is the minimal environment of every command: no system or global
  config, no terminal prompts, ``LC_ALL=C`` (so git's messages can be classified) and the
  commit identity.
* :func:`remote_env` adds the credentials for one command that talks to the remote:
  :class:`HttpCredentials` as an ``Authorization: Basic`` header in
  ``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` variables scoped to the remote URL (never in
  the URL, the command line or the clone's config); :class:`SshCredentials` as a key file
  (0600) and ``known_hosts`` in a private temporary directory that lives only as long as
  the command, used through ``GIT_SSH_COMMAND``.
* :func:`secrets_of` and :func:`redact` keep those credentials out of everything git
  prints before it is raised or logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fluxup.adapters.git.base import Identity

__all__ = [
    "HttpCredentials",
    "SshCredentials",
    "base_env",
    "redact",
    "remote_env",
    "secrets_of",
]


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


def base_env(home: Path, author: Identity) -> dict[str, str]:
    """The environment of every git command: nothing from the host's git setup."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LC_ALL": "C",
        "LANG": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": author.name,
        "GIT_COMMITTER_EMAIL": author.email,
    }
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    return env


@contextlib.asynccontextmanager
async def remote_env(
    credentials: HttpCredentials | SshCredentials | None, url: str, ssh: str
) -> AsyncIterator[dict[str, str]]:
    """Environment for one command that talks to the remote (credentials included)."""
    if isinstance(credentials, HttpCredentials):
        pair = f"{credentials.username}:{credentials.password}"
        basic = base64.b64encode(pair.encode()).decode()
        yield {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"http.{url}.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }
        return
    if not isinstance(credentials, SshCredentials):
        yield {}
        return
    directory = await asyncio.to_thread(tempfile.mkdtemp, prefix="fluxup-ssh-")
    try:
        key = Path(directory, "key")
        hosts = Path(directory, "known_hosts")
        await asyncio.to_thread(_write_private, key, credentials.private_key.rstrip("\n") + "\n")
        await asyncio.to_thread(_write_private, hosts, credentials.known_hosts or "")
        command = [
            ssh,
            *("-F", os.devnull, "-i", str(key), "-o", "IdentitiesOnly=yes"),
            *("-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={hosts}"),
            *("-o", "StrictHostKeyChecking=yes"),
        ]
        yield {"GIT_SSH_COMMAND": shlex.join(command), "GIT_SSH_VARIANT": "ssh"}
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, True)


def secrets_of(credentials: HttpCredentials | SshCredentials | None) -> list[str]:
    """The strings :func:`redact` hides, longest first: for HTTP credentials the password
    and the ``user:password`` pair, plain and base64-encoded (the Basic header)."""
    secrets: list[str] = []
    if isinstance(credentials, HttpCredentials):
        basic = f"{credentials.username}:{credentials.password}"
        secrets = [basic, base64.b64encode(basic.encode()).decode(), credentials.password]
    return sorted({s for s in secrets if s}, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` without ``secrets`` (longest first) and without userinfo in URLs."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", text)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
