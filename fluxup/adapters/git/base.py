"""The one small interface every Git backend implements, and the values it returns.

The upgrade and rollback reconcilers talk to Git only through :class:`GitBackend`: read
the files defining an app, commit a version bump to several files atomically, find a
commit FluxUp already made (by its trailers, for idempotency after a crash), revert one,
and preview a change as a diff for dry runs. Implementations: :mod:`.cli` (plain ``git``,
any forge) and :mod:`.gitea` (REST). Tests substitute a backend through this Protocol.

Semantics every backend keeps:

* ``commit_files`` is atomic: all files change in one commit, or none does. When every
  file already has its new text, nothing is committed and ``CommitResult.created`` is
  False. ``expected_parent`` is the commit the new texts were computed from
  (``FileContent.commit``): when the branch moved on since, the change is carried over
  onto the new head if that does not overwrite anyone else's edit of the same lines, and
  raises :class:`~fluxup.errors.GitConflictError` otherwise (re-read, re-edit, retry).
* A push that loses a race is retried (fetch, rebase, re-check) a few times; permanent
  refusals raise :class:`~fluxup.errors.PushRejectedError`.
* ``revert`` raises GitConflictError when the files changed since in a conflicting way;
  the caller then commits the previous version forward.
* Credentials never appear in messages, logs or exceptions.

This module does no I/O. It must not import :mod:`fluxup.logic` (import-linter keeps
adapters and logic independent), which is why the two small text helpers below exist.
"""

from __future__ import annotations

import difflib
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from fluxup.errors import ConfigError

__all__ = [
    "CommitResult",
    "FileContent",
    "GitBackend",
    "Identity",
    "check_repo_path",
    "check_trailer_key",
    "message_has_trailer",
    "render_diff",
]

_TRAILER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")


@dataclass(frozen=True)
class Identity:
    """Author and committer of FluxUp's commits."""

    name: str = "FluxUp"
    email: str = "fluxup@localhost"


@dataclass(frozen=True)
class FileContent:
    """A file as read from Git: its ``text``, its blob id ``sha`` and the ``commit`` it
    was read at (pass that as ``expected_parent`` when committing an edit of it)."""

    path: str
    text: str
    sha: str
    commit: str


@dataclass(frozen=True)
class CommitResult:
    """The commit on the branch that holds the change; ``created`` is False when the
    change was already there and nothing new was committed."""

    sha: str
    created: bool = True


@runtime_checkable
class GitBackend(Protocol):
    """A branch of a Git repository FluxUp reads and commits to."""

    async def read_file(self, path: str, ref: str | None = None) -> FileContent:
        """The file at ``path`` on the branch head (``ref=None``) or at ``ref`` (a
        commit or branch). Raises GitNotFoundError when it does not exist."""
        ...

    async def list_files(self, prefix: str = "") -> list[str]:
        """Paths of all files on the branch head starting with ``prefix``, sorted."""
        ...

    async def commit_files(
        self, changes: Mapping[str, str], message: str, expected_parent: str | None = None
    ) -> CommitResult:
        """Commit ``changes`` (path → new text) in one commit and push it."""
        ...

    async def find_commit(
        self, trailer_key: str, trailer_value: str, limit: int = 50
    ) -> str | None:
        """The newest of the last ``limit`` commits on the branch whose message has the
        trailer ``trailer_key: trailer_value`` (key case-insensitive), or None."""
        ...

    async def revert(self, commit_sha: str, message: str) -> CommitResult:
        """Commit the inverse of ``commit_sha`` on the branch head and push it."""
        ...

    async def head(self) -> str:
        """The commit the branch points to now (fetched from the remote)."""
        ...

    async def diff_preview(self, changes: Mapping[str, str]) -> str:
        """The unified diff ``commit_files(changes, ...)`` would make on the head."""
        ...

    async def aclose(self) -> None:
        """Release connections and temporary files."""
        ...


def check_repo_path(path: str) -> str:
    """``path`` if it is a normalized relative file path inside the repository."""
    if (
        not path
        or path.startswith(("/", "-"))
        or posixpath.normpath(path) != path
        or path == "."
        or path.split("/", 1)[0] in ("..", ".git")
        or any(c in path for c in "\\\n\r\x00")
    ):
        raise ConfigError(
            f"{path!r} is not a file path inside the repository: use a normalized "
            "relative path such as apps/redis/release.yaml"
        )
    return path


def check_trailer_key(key: str) -> str:
    """``key`` if it is a valid trailer key (letters, digits, '-')."""
    if not _TRAILER_KEY.match(key):
        raise ConfigError(f"{key!r} is not a commit trailer key (letters, digits and '-')")
    return key


def message_has_trailer(message: str, key: str, value: str) -> bool:
    """Whether the last paragraph of ``message`` holds the trailer ``key: value``.

    A deliberately small check for backends without git's trailer parser (REST forges);
    :func:`fluxup.logic.commitmsg.parse_trailers` is the full parser.
    """
    paragraphs = message.replace("\r\n", "\n").strip("\n").split("\n\n")
    if len(paragraphs) < 2:
        return False
    wanted_key = key.lower()
    for line in paragraphs[-1].split("\n"):
        name, sep, rest = line.partition(":")
        if sep and name.strip().lower() == wanted_key and rest.strip() == value:
            return True
    return False


def render_diff(path: str, old: str | None, new: str | None) -> str:
    """A git-style unified diff of one file (``None``: the file does not exist)."""
    if old == new:
        return ""
    before = f"a/{path}" if old is not None else "/dev/null"
    after = f"b/{path}" if new is not None else "/dev/null"
    out = [f"diff --git a/{path} b/{path}\n"]
    for line in difflib.unified_diff(
        _lines(old or ""), _lines(new or ""), fromfile=before, tofile=after
    ):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines
