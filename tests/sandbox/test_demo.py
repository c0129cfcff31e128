"""``fluxup demo``'s directory rules and command line (no cluster: the demo itself is
walked by ``tests/integration/test_demo_walkthrough.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluxup.cli import build_parser, main
from fluxup.errors import SandboxError
from fluxup.sandbox.demo import MARKER, prepare_directory
from fluxup.sandbox.guard import STATE_FILE
from fluxup.sandbox.processes import start_process, stop_process


def test_a_fresh_or_empty_directory_is_used_as_it_is(tmp_path: Path) -> None:
    prepare_directory(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    prepare_directory(tmp_path / "empty")
    assert (tmp_path / "empty").is_dir()


def test_a_directory_the_demo_did_not_make_is_refused(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(SandboxError, match="was not made by `fluxup demo`"):
        prepare_directory(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_an_earlier_stopped_demo_is_wiped(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    (demo / "etcd").mkdir(parents=True)
    (demo / MARKER).write_text("{}")
    (demo / STATE_FILE).write_text(json.dumps({"token": "t-stopped", "pids": {"etcd": 1}}))
    prepare_directory(demo)
    assert not demo.exists()


def test_a_running_demo_is_refused_and_left_alone(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / MARKER).write_text("{}")
    pid = start_process("etcd", ["sleep", "300"], demo / "logs", "t-running")
    try:
        (demo / STATE_FILE).write_text(json.dumps({"token": "t-running",
                                                   "pids": {"etcd": pid}}))
        with pytest.raises(SandboxError, match=r"already running .*make demo-down"):
            prepare_directory(demo)
        assert (demo / STATE_FILE).exists()
    finally:
        assert stop_process(pid, "t-running")


def test_command_line() -> None:
    parser = build_parser()
    args = parser.parse_args(["demo"])
    assert (args.dir, args.story, args.detach, args.func.__name__) == (
        ".demo", False, False, "_demo")
    args = parser.parse_args(["demo", "--dir", "d", "--story", "--detach"])
    assert (args.dir, args.story, args.detach) == ("d", True, True)
    args = parser.parse_args(["demo", "data", "--dir", "d", "--write", "x y"])
    assert (args.dir, args.write, args.func.__name__) == ("d", "x y", "_demo_data")
    assert parser.parse_args(["demo", "data"]).dir == ".demo"


def test_demo_data_of_a_stopped_demo_says_so(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps({"token": "t-gone", "pids": {}}))
    assert main(["demo", "data", "--dir", str(tmp_path)]) == 1
    assert f"the demo in {tmp_path} is not running; start it with `make demo`" in \
        capsys.readouterr().err
