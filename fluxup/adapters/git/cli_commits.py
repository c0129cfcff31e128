"""Builds commits with git plumbing and pushes them, rebasing when a push loses a race.

The :class:`~fluxup.adapters.git.cli.GitCliBackend` writes files without touching the
work tree: blobs (``hash-object --no-filters``, so bytes go in exactly as given), a tree
from a temporary index on top of the commit the caller read the files at, then
``commit-tree``. :func:`push` sends the commit; when the branch moved meanwhile it
fetches, stops if the change is there already, otherwise replays the commit on the new
head (in the work tree) and tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence

from fluxup.adapters.git.base import CommitResult
from fluxup.adapters.git.cli_process import GitProcess
from fluxup.errors import GitAuthError, GitConflictError, PushRejectedError

__all__ = ["already_applied", "commit_tree", "push", "tree_of", "tree_with"]

log = logging.getLogger(__name__)


async def already_applied(git: GitProcess, head: str | None, changes: Mapping[str, str]) -> bool:
    """Every file of ``changes`` has exactly that content at ``head``."""
    if head is None:
        return False
    current = await _blobs(git, head, list(changes))
    for path, text in changes.items():
        wanted = await git.run(["hash-object", "--no-filters", "--stdin"], text, check=True)
        if current.get(path) != wanted.out.strip():
            return False
    return True


async def _blobs(git: GitProcess, treeish: str, paths: Sequence[str]) -> dict[str, str]:
    """path → blob id at ``treeish`` for those of ``paths`` that exist there."""
    run = await git.run(["ls-tree", "-r", "-z", treeish, "--", *paths], check=True)
    blobs: dict[str, str] = {}
    for entry in run.out.split("\0"):
        meta, _, path = entry.partition("\t")
        if path:
            blobs[path] = meta.split()[2]
    return blobs


async def tree_of(git: GitProcess, commit: str) -> str:
    """The tree id of ``commit``."""
    return (await git.run(["rev-parse", f"{commit}^{{tree}}"], check=True)).out.strip()


async def tree_with(git: GitProcess, base: str | None, changes: Mapping[str, str]) -> str:
    """The tree of ``base`` with ``changes`` applied (written to the object store)."""
    index = await asyncio.to_thread(
        tempfile.mkstemp, prefix="fluxup-index-", dir=git.workdir / ".git"
    )
    os.close(index[0])
    env = {"GIT_INDEX_FILE": index[1]}
    try:
        await asyncio.to_thread(os.unlink, index[1])  # git wants to create it itself
        if base is None:
            await git.run(["read-tree", "--empty"], env=env, check=True)
        else:
            await git.run(["read-tree", base], env=env, check=True)
        modes = await _modes(git, base, list(changes))
        lines = []
        for path, text in changes.items():
            blob = await git.run(["hash-object", "-w", "--no-filters", "--stdin"], text, check=True)
            lines.append(f"{modes.get(path, '100644')} {blob.out.strip()}\t{path}\n")
        await git.run(["update-index", "--index-info"], "".join(lines), env=env, check=True)
        return (await git.run(["write-tree"], env=env, check=True)).out.strip()
    finally:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(os.unlink, index[1])


async def _modes(git: GitProcess, base: str | None, paths: Sequence[str]) -> dict[str, str]:
    """path → file mode at ``base`` (an executable stays executable when rewritten)."""
    if base is None:
        return {}
    run = await git.run(["ls-tree", "-r", "-z", base, "--", *paths], check=True)
    return {
        entry.partition("\t")[2]: entry.split()[0]
        for entry in run.out.split("\0")
        if "\t" in entry
    }


async def commit_tree(git: GitProcess, tree: str, parent: str | None, message: str) -> str:
    """A new commit of ``tree`` on ``parent`` (a root commit without one)."""
    args = ["commit-tree", tree, "-F", "-"]
    if parent is not None:
        args[2:2] = ["-p", parent]
    return (await git.run(args, message, check=True)).out.strip()


async def push(
    git: GitProcess,
    commit: str,
    changes: Mapping[str, str] | None,
    *,
    branch: str,
    attempts: int,
    fetch: Callable[[], Awaitable[str | None]],
) -> CommitResult:
    """Push ``commit`` to the branch; on a lost race fetch, re-check, rebase, retry.

    ``changes`` are the files the commit writes (None for a revert): when the new head
    already has them, nothing more is pushed. ``fetch`` returns the remote head."""
    for attempt in range(1, attempts + 1):
        async with git.remote_env() as env:
            run = await git.run(
                ["push", "--porcelain", "origin", f"{commit}:refs/heads/{branch}"],
                env=env,
            )
        if run.returncode == 0:
            log.info("%s: pushed %s to %s", git.name, commit[:12], branch)
            return CommitResult(sha=commit, created=True)
        status = git.redact(run.out + "\n" + run.stderr)
        if "[remote rejected]" in status or "protected branch" in status.lower():
            reason = _porcelain_reason(status)
            raise PushRejectedError(
                f"the Git server refused the push to {branch} ({reason}); check the "
                "branch protection and the permissions of FluxUp's Git credentials"
            )
        if "[rejected]" not in status:
            error = git.error(["push"], run)
            if isinstance(error, GitAuthError):
                raise PushRejectedError(f"{error}; nothing was pushed")
            raise error
        log.warning(
            "%s: push to %s lost a race (attempt %d/%d); fetching and rebasing",
            git.name,
            branch,
            attempt,
            attempts,
        )
        head = await fetch()
        if head is None:
            continue
        if changes is not None and await already_applied(git, head, changes):
            return CommitResult(sha=head, created=False)
        rebased = await _rebase(git, commit, head, branch)
        if rebased is None:
            return CommitResult(sha=head, created=False)
        commit = rebased
    raise PushRejectedError(
        f"the push to {branch} was still rejected after {attempts} "
        "attempts because the branch kept moving; try again later"
    )


async def _rebase(git: GitProcess, commit: str, onto: str, branch: str) -> str | None:
    """``commit`` replayed on ``onto``; None when it became empty (already there)."""
    parents = (await git.run(["rev-list", "--parents", "-n1", commit], check=True)).out
    upstream = ["--root"] if len(parents.split()) < 2 else [f"{commit}~1"]
    await git.run(["checkout", "-q", "-f", "--detach", commit], check=True)
    run = await git.run(
        ["rebase", "-q", "--no-autostash", "--empty=drop", "--onto", onto, *upstream]
    )
    if run.returncode != 0:
        await git.run(["rebase", "--abort"])
        await git.run(["reset", "-q", "--hard", onto])
        raise GitConflictError(
            f"the change conflicts with commits pushed to {branch} meanwhile; "
            "re-read the files and make the change again"
        )
    rebased = (await git.run(["rev-parse", "HEAD"], check=True)).out.strip()
    return None if rebased == onto else rebased


def _porcelain_reason(status: str) -> str:
    """The reason a porcelain ``git push`` status gives for a refused ref."""
    for line in status.splitlines():
        if line.startswith("!") and "(" in line:
            return line[line.index("(") + 1 :].rstrip(")").strip()
    return "rejected"
