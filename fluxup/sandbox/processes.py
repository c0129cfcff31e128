"""Start, find and stop the sandbox's background processes.

Each process runs in its own session under a small ``sh`` wrapper, with output in
``DIR/logs/<name>.log`` and the wrapper's PID (the session and process group leader)
recorded in the sandbox state, so ``fluxup sandbox down`` stops exactly what ``up``
started. The wrapper's command line carries the sandbox token, and ``is_ours`` checks
it in ``/proc/<pid>/cmdline`` (readable without ptrace rights, unlike ``environ``) before
anything is signalled, so a recycled PID of an unrelated process is never killed. When
the program ends, the wrapper writes its exit status (or signal) to the log: a process
that dies without printing anything still says how it died. A process started with
``restart=True`` is started again after it ends, as the kubelet restarts a container:
the CSI sidecars exit by design when they lose (or never get) their driver connection.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from fluxup.errors import SandboxError

__all__ = [
    "free_port", "group_alive", "is_ours", "start_process", "stop_process", "stop_strays",
    "token_processes", "wait_until",
]

TOKEN_ENV = "FLUXUP_SANDBOX_TOKEN"
T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_process(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    token: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    restart: bool = False,
) -> int:
    """Start ``argv`` detached, logging to ``log_dir/name.log``; return its PID (the
    wrapper's). With ``restart`` the wrapper starts the program again each time it ends
    (after ``RESTART_DELAY`` seconds) until the group is stopped."""
    log_dir.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env[TOKEN_ENV] = token
    full_env.setdefault("NO_PROXY", "127.0.0.1,localhost")
    full_env["FLUXUP_PROCESS_LOG"] = str(log_dir / f"{name}.log")
    # A throw-away shell starts the wrapper in its own session and exits at once, so the
    # process outlives us (``sandbox up`` returns) and nobody needs to wait for it.
    launcher = (
        'setsid sh -c "$0" "$@" </dev/null >>"$FLUXUP_PROCESS_LOG" 2>&1 & echo $!'
    )
    proc = subprocess.run(
        ["sh", "-c", launcher, _WRAPPER, _marker(token), name,
         str(RESTART_DELAY) if restart else "no", *argv], env=full_env,
        cwd=cwd, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip().isdigit():
        raise SandboxError(f"could not start {name}: {proc.stderr.strip()}")
    pid = int(proc.stdout.strip())
    # until setsid has exec'd the wrapper, /proc/<pid>/cmdline is the launcher's: wait for
    # the wrapper so that ``is_ours`` (and a signal to its group) is right once we return
    deadline = time.monotonic() + 10
    while not is_ours(pid, token):
        if time.monotonic() > deadline or not Path(f"/proc/{pid}").exists():
            log = (log_dir / f"{name}.log").read_text(errors="replace")[-2000:]
            raise SandboxError(f"{name} exited right after start; log:\n{log}")
        time.sleep(0.01)
    return pid


#: Seconds between a restartable process's end and its next start.
RESTART_DELAY = 2

# $0 is the marker, $1 the component's name, $2 the restart delay ("no": run once), the
# rest its argv. The program runs as the wrapper's child in the wrapper's process group;
# each end is logged with its status.
_WRAPPER = (
    'name=$1; delay=$2; shift 2; while :; do "$@"; status=$?; '
    'if [ "$status" -gt 128 ]; then how="signal $((status - 128))"; '
    'else how="status $status"; fi; '
    'echo "[fluxup-sandbox] $name exited with $how"; '
    '[ "$delay" = no ] && exit "$status"; '
    'echo "[fluxup-sandbox] restarting $name in ${delay}s"; sleep "$delay"; done'
)


def _marker(token: str) -> str:
    return f"fluxup-sandbox:{token}"


def is_ours(pid: int, token: str) -> bool:
    """True if ``pid`` is alive and is a wrapper the sandbox with ``token`` started."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False  # no such process
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # zombie: exited, not yet reaped
        return False
    # the wrapper itself, not the launcher or setsid that carry the same words before
    # they exec it (only the wrapper has its own session and process group)
    return cmdline.split(b"\0")[2:4] == [_WRAPPER.encode(), _marker(token).encode()]


def stop_process(pid: int, token: str, grace: float = 10.0) -> bool:
    """SIGTERM then SIGKILL the process group of ``pid`` if it is ours; True if it was."""
    if not is_ours(pid, token):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    # wait for the whole group, not only the wrapper: the shell dies of SIGTERM at once
    # while the program may still be shutting down (holding its ports)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and group_alive(pid):
        _reap(pid)
        time.sleep(0.1)
    if group_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and group_alive(pid):
            _reap(pid)
            time.sleep(0.05)
    _reap(pid)
    return True


def group_alive(pgid: int) -> bool:
    """True while any process of group ``pgid`` is alive (zombies, which only wait to be
    reaped, do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue  # gone meanwhile
        if fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def token_processes(token: str) -> list[int]:
    """Every live process carrying sandbox ``token`` in its environment: what the sandbox
    started and anything those started, even a child that left its process group (its
    own session), found through ``/proc/<pid>/environ`` (readable for our own processes)."""
    needle = f"{TOKEN_ENV}={token}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle not in environ.read_bytes().split(b"\0"):
                continue
            fields = (environ.parent / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if fields[0] != "Z":
            found.append(int(environ.parent.name))
    return sorted(found)


def stop_strays(token: str, grace: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL, every process :func:`token_processes` finds; return them."""
    strays = token_processes(token)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pid in strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and token_processes(token):
            for pid in strays:
                _reap(pid)
            time.sleep(0.1)
        if not token_processes(token):
            break
        strays = sorted(set(strays) | set(token_processes(token)))
    return strays


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    log: Path | None = None,
    alive: Callable[[], bool] | None = None,
    interval: float = 0.2,
) -> T:
    """Poll ``probe`` until it returns something truthy and return that; on timeout raise
    naming ``what``, the last value and the log's tail."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if alive is not None and not alive():
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise SandboxError(f"{what} exited during start-up; log {log}:\n{tail}")
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise SandboxError(f"{what} not ready after {timeout:.0f}s (last: {value!r}); "
                       f"log {log}:\n{tail}")
