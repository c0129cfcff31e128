"""Run Renovate 44 (``--platform=local``, ``dryRun=lookup``) on a checkout of a Git repository.

Called by the scan reconciler (:mod:`fluxup.reconcile.renovate`) on the operator's
schedule and by ``fluxup scan``. Each run:

* gets a private directory (mode 0700) holding a checkout of the repository's YAML files
  (read through the :class:`~fluxup.adapters.git.base.GitBackend`, so any backend works)
  committed to a throw-away Git repository (Renovate's local platform scans
  ``git ls-files``), the generated config file (it may hold registry credentials, so the
  file is 0600 and deleted with the directory), Renovate's base and cache directories
  (fresh each run: a persistent cache hides chart versions published in the last 30 min)
  and the report file;
* runs ``node renovate.js`` with ``RENOVATE_CONFIG_FILE`` pointing at FluxUp's config, so
  a ``config.js`` in the repository is never loaded or executed, a minimal environment
  (no inherited tokens), ``LOG_FORMAT=json`` at info level, in its own process group;
* is serialized (one Renovate at a time per runner: it needs ~450 MiB), killed with its
  process group at the timeout, and keeps only a short log: warnings, errors and the
  ``Repository finished`` line, each cut to 500 characters.

The report text is returned unparsed; :mod:`fluxup.logic.renovate_report` validates it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluxup.adapters.git.base import GitBackend, check_repo_path
from fluxup.errors import FluxUpError

__all__ = ["RenovateError", "RenovateRunner", "RunResult", "checkout_yaml"]

_LOG_LINE = 500
_YAML = (".yaml", ".yml")
_MAX_FILES = 20_000


class RenovateError(FluxUpError):
    """Renovate could not be started, or the checkout for it could not be made."""


@dataclass(frozen=True)
class RunResult:
    """How one run went. ``report`` is the report file's text (``None`` when Renovate wrote
    none); ``finished_result`` is the ``result`` of Renovate's ``Repository finished`` line
    (set only when the repository was aborted); ``log`` the kept lines."""

    exit_code: int | None
    report: str | None
    duration_seconds: float
    timed_out: bool = False
    finished: bool = False
    finished_result: str | None = None
    log: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return (self.exit_code == 0 and not self.timed_out and self.report is not None
                and self.finished and not self.finished_result)

    def describe_failure(self) -> str:
        """What went wrong, for a condition message (no secrets: log lines are Renovate's
        own, which it sanitizes)."""
        if self.timed_out:
            return f"Renovate did not finish within {self.duration_seconds:.0f} s and was stopped"
        if self.finished_result:
            return f"Renovate aborted the repository ({self.finished_result})" + self._last()
        if self.exit_code != 0:
            return f"Renovate exited with code {self.exit_code}" + self._last()
        if self.report is None:
            return "Renovate wrote no report" + self._last()
        return "Renovate did not report the repository as finished" + self._last()

    def _last(self) -> str:
        problems = [line for line in self.log if '"level":4' in line or '"level":5' in line
                    or '"level":6' in line]
        if not problems:
            return ""
        try:
            record = json.loads(problems[-1])
            return f": {str(record.get('msg', ''))[:200]}"
        except ValueError:
            return ""


async def checkout_yaml(git: GitBackend, dest: Path, git_binary: str = "git") -> str:
    """Write the repository's YAML files at its head into ``dest`` and commit them to a
    fresh local repository there; the head commit scanned."""
    head = await git.head()
    paths = [p for p in await git.list_files("") if p.endswith(_YAML)]
    if len(paths) > _MAX_FILES:
        raise RenovateError(f"the repository has {len(paths)} YAML files; at most "
                            f"{_MAX_FILES} are scanned")
    for path in paths:
        check_repo_path(path)
        content = await git.read_file(path, ref=head)
        target = dest / path
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(target.write_text, content.text)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(dest),
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "FluxUp", "GIT_AUTHOR_EMAIL": "fluxup@localhost",
           "GIT_COMMITTER_NAME": "FluxUp", "GIT_COMMITTER_EMAIL": "fluxup@localhost"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["commit", "-q", "--allow-empty", "-m", f"scan of {head[:12]}"]):
        proc = await asyncio.create_subprocess_exec(
            git_binary, *args, cwd=dest, env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise RenovateError(f"git {args[0]} for the scan checkout failed: "
                                f"{err.decode(errors='replace').strip()[:300]}")
    return head


class RenovateRunner:
    """Runs Renovate, one run at a time (see the module docstring)."""

    def __init__(self, node: Path, renovate_js: Path, *, work_dir: Path,
                 timeout_seconds: float = 600.0, log_lines: int = 50) -> None:
        self._node = node
        self._renovate_js = renovate_js
        self._work_dir = work_dir
        self._timeout = timeout_seconds
        self._log_lines = log_lines
        self._lock = asyncio.Lock()

    def _check(self) -> None:
        for path, what in ((self._node, "node"), (self._renovate_js, "renovate.js")):
            if not path.is_file():
                raise RenovateError(
                    f"{what} not found at {path}; install Node 24 and Renovate 44 "
                    "(`fluxup renovate install`) or set FLUXUP_RENOVATE_NODE/"
                    "FLUXUP_RENOVATE_JS"
                )

    @contextlib.asynccontextmanager
    async def workspace(self) -> Any:
        """A private directory for one run, removed afterwards."""
        await asyncio.to_thread(self._work_dir.mkdir, parents=True, exist_ok=True)
        path = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="renovate-",
                                            dir=self._work_dir))
        try:
            yield path
        finally:
            await asyncio.to_thread(shutil.rmtree, path, True)

    async def run(self, repo_dir: Path, config: Mapping[str, Any], run_dir: Path) -> RunResult:
        """Run Renovate in ``repo_dir`` with ``config`` (whose paths point into
        ``run_dir``); wait at most the timeout."""
        self._check()
        config_file = run_dir / "config.json"
        fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(dict(config), out)
        report_path = Path(str(config["reportPath"]))
        env = {
            "PATH": f"{self._node.parent}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(run_dir),
            "RENOVATE_CONFIG_FILE": str(config_file),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
            "NO_COLOR": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "NO_PROXY": "127.0.0.1,localhost",
        }
        async with self._lock:
            return await self._run(repo_dir, env, report_path)

    async def _run(self, repo_dir: Path, env: dict[str, str], report_path: Path) -> RunResult:
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                str(self._node), str(self._renovate_js), cwd=repo_dir, env=env,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                limit=16 * 1024 * 1024,
            )
        except OSError as exc:
            raise RenovateError(f"cannot start Renovate: {exc.strerror}") from None
        kept: collections.deque[str] = collections.deque(maxlen=self._log_lines)
        finished: dict[str, Any] = {}
        output = proc.stdout
        if output is None:  # cannot happen with stdout=PIPE; never read a None stream
            raise RenovateError("cannot read Renovate's output")

        async def read() -> None:
            async for raw in output:
                line = raw.decode("utf-8", errors="replace").strip()
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(record, dict):
                    continue
                if record.get("msg") == "Repository finished":
                    finished.update(record)
                    kept.append(line[:_LOG_LINE])
                elif isinstance(record.get("level"), int) and record["level"] >= 40:
                    kept.append(line[:_LOG_LINE])

        timed_out = False
        try:
            await asyncio.wait_for(asyncio.gather(read(), proc.wait()), self._timeout)
        except TimeoutError:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        report = None
        if not timed_out and await asyncio.to_thread(report_path.is_file):
            report = await asyncio.to_thread(report_path.read_text, "utf-8")
        result = finished.get("result")
        return RunResult(
            exit_code=proc.returncode,
            report=report,
            duration_seconds=time.monotonic() - started,
            timed_out=timed_out,
            finished=bool(finished),
            finished_result=str(result)[:100] if result else None,
            log=tuple(kept),
        )
