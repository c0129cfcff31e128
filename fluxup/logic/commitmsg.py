"""Commit messages FluxUp writes to Git, and the trailers it reads back from them.

The upgrade reconciler calls :func:`build_commit_message` when it commits a version bump
(Committing phase), the rollback reconciler :func:`build_rollback_message` when it reverts
one; both (through the Git backends' ``find_commit``) use :func:`parse_trailers` to answer
"is the commit already there?" after a crash, so each commit is made exactly once.

Trailers follow git's format (``Key: value`` lines in the last paragraph), so
``git interpret-trailers`` and forges understand them too. Values are checked for line
breaks: a crafted version or name must not be able to inject a trailer.

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fluxup.errors import InvalidValueError

__all__ = [
    "MANAGED_BY",
    "TRAILER_MANAGED_BY",
    "TRAILER_PREVIOUS_VERSION",
    "TRAILER_REVERTS",
    "TRAILER_ROLLBACK_REQUEST",
    "TRAILER_UPGRADE_REQUEST",
    "SnapshotEntry",
    "build_commit_message",
    "build_rollback_message",
    "parse_trailers",
]

MANAGED_BY = "fluxup"
TRAILER_MANAGED_BY = "Managed-By"
TRAILER_PREVIOUS_VERSION = "Previous-Version"
TRAILER_UPGRADE_REQUEST = "Upgrade-Request"
TRAILER_ROLLBACK_REQUEST = "Rollback-Request"
TRAILER_REVERTS = "Reverts"

_TRAILER_LINE = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)\Z")


@dataclass(frozen=True)
class SnapshotEntry:
    """One VolumeSnapshot listed in the commit body: the snapshot ``name`` in
    ``namespace``, taken of the PersistentVolumeClaim ``pvc``."""

    namespace: str
    name: str
    pvc: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name} (PVC {self.pvc})"


def build_commit_message(
    app: str,
    version: str,
    previous_version: str,
    upgrade_request: str,
    snapshots: Sequence[SnapshotEntry | str],
) -> str:
    """The upgrade commit's message.

    ``upgrade_request`` is ``<namespace>/<name>``; ``snapshots`` are the VolumeSnapshots
    FluxUp takes of the app's volumes before Flux applies this commit (their names are
    deterministic, so they are known when the commit is made). The message ends with a
    newline, like git's own.
    """
    _check("app", app)
    _check("version", version)
    _check("previous version", previous_version)
    _check_request("upgrade request", upgrade_request)
    subject = f"chore(deps): update {app} to {version}"
    body = _snapshot_body(snapshots)
    trailers = {
        TRAILER_MANAGED_BY: MANAGED_BY,
        TRAILER_PREVIOUS_VERSION: previous_version,
        TRAILER_UPGRADE_REQUEST: upgrade_request,
    }
    return _assemble(subject, [body], trailers)


def build_rollback_message(
    app: str,
    version: str,
    rolled_back_version: str,
    rollback_request: str,
    reverted_commit: str | None,
) -> str:
    """The message of the commit that returns ``app`` to ``version``: a revert of
    ``reverted_commit``, or (``None``) a forward commit of the previous version, made
    when the revert conflicts or the upgrade had no FluxUp commit (a plain ``git push``)."""
    _check("app", app)
    _check("version", version)
    _check("rolled back version", rolled_back_version)
    _check_request("rollback request", rollback_request)
    if reverted_commit is not None:
        _check("reverted commit", reverted_commit)
    subject = f"revert(deps): roll {app} back to {version}"
    last = (
        f"This reverts commit {reverted_commit}."
        if reverted_commit
        else f"This commit sets {version} again."
    )
    body = (
        f"FluxUp rolled {app} back from {rolled_back_version} to {version}\n"
        "and restored its volumes from the pre-upgrade snapshots.\n"
        f"{last}"
    )
    trailers = {
        TRAILER_MANAGED_BY: MANAGED_BY,
        TRAILER_PREVIOUS_VERSION: rolled_back_version,
        TRAILER_ROLLBACK_REQUEST: rollback_request,
    }
    if reverted_commit:
        trailers[TRAILER_REVERTS] = reverted_commit
    return _assemble(subject, [body], trailers)


def parse_trailers(message: str) -> dict[str, str]:
    """The trailers of a commit message: the ``Key: value`` lines of its last paragraph
    (lines indented by whitespace continue the previous value, as in git).

    The last paragraph counts only when every line in it is a trailer or a continuation
    and it is not the subject. Keys are returned as written; when a key repeats, the
    first value wins. CRLF line ends are accepted.
    """
    lines = message.replace("\r\n", "\n").rstrip("\n").split("\n")
    # Paragraphs are separated by blank lines; the subject is the first paragraph.
    end = len(lines)
    start = end
    while start > 0 and lines[start - 1].strip():
        start -= 1
    if start == 0:  # only a subject (and maybe its paragraph): no trailers
        return {}
    trailers: dict[str, str] = {}
    current: str | None = None  # key the previous line set (None: ignored repeat)
    for index, line in enumerate(lines[start:end]):
        if line[:1] in (" ", "\t") and index > 0:
            if current is not None:
                trailers[current] = f"{trailers[current]} {line.strip()}".strip()
            continue
        match = _TRAILER_LINE.match(line)
        if match is None:
            return {}
        key, value = match.group(1), match.group(2).strip()
        current = None if key in trailers else key
        trailers.setdefault(key, value)
    return trailers


def _snapshot_body(snapshots: Sequence[SnapshotEntry | str]) -> str:
    if not snapshots:
        return "No volumes to snapshot: the app has no PersistentVolumeClaims FluxUp manages."
    lines = [
        "Before Flux applies this version, FluxUp snapshots these volumes and holds the",
        "release until the snapshots are ReadyToUse; a rollback restores from them:",
    ]
    for snapshot in snapshots:
        _check("snapshot", str(snapshot))
        lines.append(f"- {snapshot}")
    return "\n".join(lines)


def _assemble(subject: str, paragraphs: list[str], trailers: dict[str, str]) -> str:
    trailer_block = "\n".join(f"{key}: {value}" for key, value in trailers.items())
    return "\n\n".join([subject, *paragraphs, trailer_block]) + "\n"


def _check(what: str, value: str) -> None:
    if not value or value != value.strip() or any(c in value for c in "\r\n\x00"):
        raise InvalidValueError(
            f"commit message: {what} {value!r} is empty, has surrounding spaces or a line "
            "break; pass a single-line value"
        )


def _check_request(what: str, value: str) -> None:
    _check(what, value)
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name or "/" in name or " " in value:
        raise InvalidValueError(f"commit message: {what} {value!r} is not <namespace>/<name>")
