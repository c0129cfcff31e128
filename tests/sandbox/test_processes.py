"""Sandbox processes: identity by the wrapper's command line, exit status in the log,
the whole process group stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from fluxup.errors import SandboxError
from fluxup.sandbox.processes import (
    group_alive,
    is_ours,
    start_process,
    stop_process,
    stop_strays,
    token_processes,
    wait_until,
)


def _log(tmp_path: Path, name: str) -> str:
    return (tmp_path / f"{name}.log").read_text()


def _run_to_end(tmp_path: Path, name: str, argv: list[str]) -> str:
    """Start a short-lived program; return what FluxUp reports of its end. It may be gone
    before ``start_process`` sees it running, which is then an error quoting the log."""
    try:
        pid = start_process(name, argv, tmp_path, "tok-a")
    except SandboxError as exc:
        report = str(exc)
        assert f"{name} exited right after start" in report
        return report
    wait_until("the process to end", lambda: not is_ours(pid, "tok-a"), 10)
    wait_until("the status line", lambda: "exited with" in _log(tmp_path, name), 10)
    return _log(tmp_path, name)


def test_a_process_that_exits_silently_leaves_its_status_in_the_log(tmp_path: Path) -> None:
    report = _run_to_end(tmp_path, "quiet", ["sh", "-c", "exit 3"])
    assert "[fluxup-sandbox] quiet exited with status 3" in report


def test_a_process_killed_by_a_signal_says_which(tmp_path: Path) -> None:
    report = _run_to_end(tmp_path, "victim", ["sh", "-c", "kill -SEGV $$"])
    assert "[fluxup-sandbox] victim exited with signal 11" in report


def test_identity_needs_the_token_and_stop_ends_the_whole_group(tmp_path: Path) -> None:
    marker = tmp_path / "child-pid"
    pid = start_process(
        "sleeper", ["sh", "-c", f"sleep 300 & echo $! > {marker}; wait"], tmp_path, "tok-c"
    )
    try:
        assert is_ours(pid, "tok-c")
        assert not is_ours(pid, "tok-other")
        assert not is_ours(os.getpid(), "tok-c")
        assert os.getpgid(pid) == pid  # its own session and process group
        child = int(wait_until("the child's pid", lambda: marker.exists()
                               and marker.read_text().strip(), 10))
    finally:
        assert stop_process(pid, "tok-c", grace=5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the program's child outlived stop_process")
    assert not stop_process(pid, "tok-c")  # gone: nothing to stop, nothing signalled


def test_stop_waits_for_a_program_that_shuts_down_slowly(tmp_path: Path) -> None:
    """The wrapper shell dies of SIGTERM at once; the program (here: one second of
    shutdown, as the operator closing its ports) must be gone too when stop returns."""
    slow = "trap 'sleep 1; exit 0' TERM; while :; do sleep 0.1; done"
    pid = start_process("slow", ["sh", "-c", slow], tmp_path, "tok-s")
    assert stop_process(pid, "tok-s", grace=5)
    assert not group_alive(pid)  # nothing of the group still runs (or holds a port)


def test_a_child_that_left_the_group_is_found_by_token_and_stopped(tmp_path: Path) -> None:
    """A program's child in its own session survives a stop of the group; the token in
    its environment still names it, and ``stop_strays`` ends it (``sandbox down`` does)."""
    marker = tmp_path / "escaped-pid"
    token = f"tok-{os.getpid()}-stray"
    pid = start_process(
        "escaper", ["sh", "-c", f"setsid sleep 300 & echo $! > {marker}; wait"], tmp_path,
        token)
    child = int(wait_until("the child's pid", lambda: marker.exists()
                           and marker.read_text().strip(), 10))
    try:
        wait_until("the child in its own session", lambda: os.getsid(child) == child, 10)
        assert stop_process(pid, token, grace=5)
        os.kill(child, 0)  # still alive: it left the group stop_process ends
        assert token_processes(token) == [child]
        assert not stop_strays("tok-someone-else")
        assert stop_strays(token, grace=5) == [child]
        assert token_processes(token) == []
        assert not Path(f"/proc/{child}").exists() or \
            Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_a_restartable_process_is_started_again_until_stopped(tmp_path: Path) -> None:
    """A CSI sidecar exits when its driver connection fails; like the kubelet, the
    wrapper starts it again (each run appends a line) until the group is stopped."""
    runs = tmp_path / "runs"
    pid = start_process("sidecar", ["sh", "-c", f"echo run >> {runs}; exit 1"], tmp_path,
                        "tok-r", restart=True)
    try:
        wait_until("a second run", lambda: runs.exists() and
                   len(runs.read_text().splitlines()) >= 2, 20)
        assert is_ours(pid, "tok-r")  # the wrapper stays while it restarts the program
        log = _log(tmp_path, "sidecar")
        assert "[fluxup-sandbox] sidecar exited with status 1" in log
        assert "[fluxup-sandbox] restarting sidecar in 2s" in log
    finally:
        assert stop_process(pid, "tok-r", grace=5)
    assert not group_alive(pid)
    count = len(runs.read_text().splitlines())
    time.sleep(3)
    assert len(runs.read_text().splitlines()) == count  # stopped means no more runs
