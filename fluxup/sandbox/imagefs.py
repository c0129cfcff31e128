"""Build the container image's root filesystem without a Docker engine.

No Docker engine exists on FluxUp's build machine, so :func:`stage_image` performs the
Dockerfile's steps, in its order, into a staging directory on the host:

1. ``renovate`` stage: Node ``NODE_VERSION`` and Renovate ``RENOVATE_VERSION`` from the
   npm registry, Renovate's re2 addon compiled against Node's own headers
   (:func:`fluxup.sandbox.renovate.ensure_renovate` runs exactly the Dockerfile's npm
   commands, cached by version);
2. ``build`` stage: a virtualenv at ``opt/fluxup`` with FluxUp installed from the
   repository (``pip install <repo>``, dependencies from pyproject.toml's pins), byte
   compiled; ``crds/`` copied to ``opt/fluxup/crds``;
3. final stage: ``usr/local/bin/node``, ``opt/renovate``, ``opt/fluxup`` and the
   ``usr/local/bin/renovate`` link, plus the image's environment
   (:meth:`StagedImage.env`).

What differs from the image: the Python base (Debian's ``/usr/bin/python3.11`` on the host
stands in for ``python:3.11-slim-bookworm``, itself Debian bookworm's; the venv's
interpreter links to it) and the absolute paths (the staging directory instead of ``/``).
``tests/image/test_rootfs.py`` runs the entry points from the staged tree, read-only and
as uid 65532.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from fluxup.errors import SandboxError
from fluxup.sandbox.renovate import NODE_VERSION, RENOVATE_VERSION, ensure_renovate

__all__ = ["REPO", "StagedImage", "dockerfile_args", "stage_image"]

REPO = Path(__file__).resolve().parents[2]
#: The stand-in for the image's Python base (readable by any user, unlike a pyenv build).
BASE_PYTHON = Path("/usr/bin/python3.11")


@dataclass(frozen=True)
class StagedImage:
    """A staged root filesystem."""

    root: Path

    @property
    def venv(self) -> Path:
        return self.root / "opt" / "fluxup"

    @property
    def fluxup(self) -> Path:
        return self.venv / "bin" / "fluxup"

    @property
    def node(self) -> Path:
        return self.root / "usr" / "local" / "bin" / "node"

    @property
    def renovate(self) -> Path:
        return self.root / "usr" / "local" / "bin" / "renovate"

    def env(self, tmp: Path) -> dict[str, str]:
        """The image's ``ENV`` with the staged paths (``tmp`` stands in for /tmp)."""
        return {
            "PATH": f"{self.venv / 'bin'}:{self.root / 'usr/local/bin'}:/usr/bin:/bin",
            "HOME": str(tmp),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "RENOVATE_BASE_DIR": str(tmp / "renovate"),
            "FLUXUP_WORK_DIR": str(tmp / "work"),
        }


def dockerfile_args(dockerfile: Path | None = None) -> dict[str, str]:
    """The ``ARG NAME=default`` values declared in the Dockerfile."""
    text = (dockerfile or REPO / "Dockerfile").read_text()
    return dict(re.findall(r"^ARG ([A-Z_]+)=(\S+)$", text, flags=re.MULTILINE))


def _run(args: list[str], what: str, out: TextIO, **kwargs: object) -> None:
    print(f"  {what}", file=out, flush=True)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=1800, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise SandboxError(f"{what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def _link_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` as hard links when on one filesystem (fast), else copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["cp", "-al", str(src), str(dst)], capture_output=True).returncode:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst, symlinks=True)


def stage_image(stage: Path, out: TextIO = sys.stdout) -> StagedImage:
    """Build the image's root filesystem into ``stage`` (must not exist yet)."""
    args = dockerfile_args()
    if (args.get("NODE_VERSION"), args.get("RENOVATE_VERSION")) != (NODE_VERSION,
                                                                     RENOVATE_VERSION):
        raise SandboxError(
            f"the Dockerfile pins node {args.get('NODE_VERSION')} and renovate "
            f"{args.get('RENOVATE_VERSION')} but fluxup/sandbox/renovate.py pins "
            f"{NODE_VERSION} and {RENOVATE_VERSION}; make them equal"
        )
    image = StagedImage(stage)
    stage.mkdir(parents=True)
    # stage "renovate"
    print("  renovate stage: node and renovate from the npm registry", file=out, flush=True)
    installed = ensure_renovate()
    image.node.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(installed.node, image.node)
    _link_tree(installed.renovate_js.parents[3], stage / "opt" / "renovate")
    # stage "build"
    if not BASE_PYTHON.exists():
        raise SandboxError(f"{BASE_PYTHON} is missing: apt-get install python3.11-venv")
    _run([str(BASE_PYTHON), "-m", "venv", str(image.venv)], "build stage: python -m venv", out)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    with _source_copy(stage) as src:
        _run([str(image.venv / "bin" / "pip"), "install", "--no-cache-dir", "--quiet",
              str(src)], "build stage: pip install fluxup (pinned dependencies)", out, env=env)
    _run([str(image.venv / "bin" / "python"), "-m", "compileall", "-q",
          str(image.venv / "lib")], "build stage: compileall", out)
    shutil.copytree(REPO / "crds", image.venv / "crds")
    # final stage
    image.renovate.symlink_to(
        stage / "opt" / "renovate" / "node_modules" / "renovate" / "dist" / "renovate.js")
    return image


class _source_copy:
    """The Dockerfile's ``COPY pyproject.toml README.md fluxup webhook certs`` into a
    build context of its own (so pip never writes into the repository)."""

    def __init__(self, stage: Path) -> None:
        self.path = stage.parent / f"{stage.name}-src"

    def __enter__(self) -> Path:
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, self.path / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in ("fluxup", "webhook", "certs"):
            shutil.copytree(REPO / name, self.path / name, ignore=ignore)
        return self.path

    def __exit__(self, *_: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
