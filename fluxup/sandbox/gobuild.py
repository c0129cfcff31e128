"""Build the sandbox's Go binaries from published modules, cached by version.

Called by ``fluxup sandbox build`` (and by ``sandbox up`` for anything missing). For
each :class:`~fluxup.sandbox.components.GoComponent` it writes a small wrapper module
(``go mod init`` + the upstream module's non-local ``replace``/``exclude`` lines; the
Kubernetes staging replaces are mapped to their published ``v0.X.Y`` tags; a module served
under another path than its go.mod declares is replaced by that path), then runs
``go build``. Binaries land in ``<cache>/bin/<name>-<key>/`` and a ``.complete``
marker makes later runs skip the build. Nothing is ever cloned: everything comes
through the Go module proxy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from fluxup.errors import SandboxError
from fluxup.sandbox.components import COMPONENTS, TOOLS, GoComponent

__all__ = ["bin_dir", "cache_root", "ensure_all", "ensure_built", "module_dir"]


def cache_root() -> Path:
    """Where slow builds are cached: ``$FLUXUP_CACHE`` or ``~/.cache/fluxup``."""
    return Path(os.environ.get("FLUXUP_CACHE", Path.home() / ".cache" / "fluxup"))


def bin_dir(comp: GoComponent) -> Path:
    return cache_root() / "bin" / f"{comp.name}-{comp.key}"


def _go_env(comp: GoComponent) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOTOOLCHAIN="local",
        GOFLAGS="-mod=mod -buildvcs=false",
        CGO_ENABLED="1" if comp.cgo else "0",
    )
    return env


def _go(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(["go", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SandboxError(
            f"`go {' '.join(args)}` failed in {cwd} (exit {proc.returncode}):\n"
            f"{proc.stderr.strip()[-4000:]}"
        )
    return proc.stdout


def module_dir(module: str, version: str) -> Path:
    """Download ``module@version`` into the module cache and return its directory."""
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod")
    tmp = cache_root() / "go"
    tmp.mkdir(parents=True, exist_ok=True)
    info = json.loads(_go(["mod", "download", "-json", f"{module}@{version}"], tmp, env))
    if info.get("Error"):
        raise SandboxError(f"cannot download {module}@{version}: {info['Error']}")
    return Path(info["Dir"])


def _upstream_gomod(comp: GoComponent, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """The upstream go.mod, parsed; its go.sum is copied into the wrapper ``cwd``, so that
    modules the checksum database does not know (Gitea's ``gitea.dev/sdk``) verify
    against the hashes upstream recorded."""
    served = comp.source or comp.module
    out = _go(["mod", "download", "-json", f"{served}@{comp.version}"], cwd, env)
    info = json.loads(out)
    if info.get("Error"):
        raise SandboxError(f"cannot download {served}@{comp.version}: {info['Error']}")
    upstream_sum = Path(info["Dir"]) / "go.sum"
    if upstream_sum.is_file():
        (cwd / "go.sum").write_bytes(upstream_sum.read_bytes())
    parsed: dict[str, Any] = json.loads(_go(["mod", "edit", "-json", info["GoMod"]], cwd, env))
    return parsed


def _replace_args(comp: GoComponent, gomod: dict[str, Any]) -> list[str]:
    """Translate the upstream replaces into ``go mod edit`` flags for the wrapper."""
    args: list[str] = []
    for rep in gomod.get("Replace") or []:
        old, new = rep["Old"], rep["New"]
        old_ref = old["Path"] + (f"@{old['Version']}" if old.get("Version") else "")
        if new.get("Version"):
            args.append(f"-replace={old_ref}={new['Path']}@{new['Version']}")
        elif new["Path"].startswith("./staging/src/k8s.io/"):
            staging = "v0." + comp.version.lstrip("v").split(".", 1)[1]
            args.append(f"-replace={old_ref}={old['Path']}@{staging}")
        # other local-path replaces are dropped: the require block pins published siblings
    for exc in gomod.get("Exclude") or []:
        args.append(f"-exclude={exc['Path']}@{exc['Version']}")
    return args


def _pinned(comp: GoComponent, pkg: str) -> str:
    """``pkg@version`` for packages of ``comp.module``: a bare ``go get pkg`` means
    ``@upgrade`` and would silently build the newest release instead of the pinned one."""
    if pkg == comp.module or pkg.startswith(comp.module + "/"):
        return f"{pkg}@{comp.version}"
    return pkg


class _Progress:
    """Prints a heartbeat line while a long build runs, so users see it is alive."""

    def __init__(self, label: str, out: TextIO) -> None:
        self.label, self.out, self.count = label, out, 0
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(30):
            elapsed = time.monotonic() - self._start
            print(f"  ... {self.label}: {self.count} packages compiled, {elapsed:.0f}s",
                  file=self.out, flush=True)


def _build(comp: GoComponent, work: Path, dest: Path, env: dict[str, str], out: TextIO) -> None:
    ldflags = " ".join(("-s", "-w", *comp.ldflags))
    log_path = work / "build.log"
    with _Progress(comp.name, out) as progress, open(log_path, "w") as log:
        for name, pkg in comp.packages.items():
            cmd = ["go", "build", "-v", "-trimpath", f"-ldflags={ldflags}",
                   "-o", str(dest / name), pkg]
            proc = subprocess.Popen(cmd, cwd=work, env=env, stderr=subprocess.PIPE, text=True)
            assert proc.stderr is not None
            for line in proc.stderr:
                log.write(line)
                progress.count += 1
            if proc.wait() != 0:
                log.flush()
                tail = log_path.read_text()[-3000:]
                raise SandboxError(f"building {name} from {pkg} failed; see {log_path}:\n{tail}")
            print(f"  built {name}", file=out, flush=True)


def ensure_built(comp: GoComponent, out: TextIO = sys.stdout) -> Path:
    """Build ``comp`` unless its cached binaries exist; return the bin directory."""
    dest = bin_dir(comp)
    if (dest / ".complete").exists():
        return dest
    started = time.monotonic()
    print(f"building {comp.name} {comp.version} (cold builds take minutes) ...",
          file=out, flush=True)
    work = cache_root() / "go" / f"wrap-{comp.name}-{comp.key}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = _go_env(comp)
    _go(["mod", "init", f"local/wrap-{comp.name}"], work, env)
    gomod = _upstream_gomod(comp, env, work)
    edits = _replace_args(comp, gomod)
    if comp.source:
        edits.append(f"-replace={comp.module}={comp.source}@{comp.version}")
    edits.append(f"-require={comp.module}@{comp.version}")
    edits += [f"-require={req}" for req in comp.extra_requires]
    _go(["mod", "edit", *edits], work, env)
    for pkg in comp.packages.values():
        _go(["get", "-tool", _pinned(comp, pkg)], work, env)
    _go(["mod", "tidy"], work, env)
    resolved = _go(["list", "-m", "-f", "{{.Version}}", comp.module], work, env).strip()
    if resolved != comp.version:
        raise SandboxError(
            f"{comp.module} resolved to {resolved}, not the pinned {comp.version}; "
            "another requirement pulls it up: pin a compatible version in components.py"
        )
    tmp_dest = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp_dest, ignore_errors=True)
    tmp_dest.mkdir(parents=True)
    _build(comp, work, tmp_dest, env, out)
    (tmp_dest / ".complete").write_text(f"{comp.module}@{comp.version}\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp_dest.rename(dest)
    print(f"built {comp.name} in {time.monotonic() - started:.0f}s -> {dest}", file=out, flush=True)
    return dest


def ensure_all(names: list[str] | None = None, out: TextIO = sys.stdout) -> dict[str, Path]:
    """Build the named components (default: all of the cluster's; tools such as helm only
    when named) and return ``{name: bin dir}``."""
    chosen = [c for c in (*COMPONENTS, *TOOLS)
              if (names is None and c in COMPONENTS) or (names is not None and c.name in names)]
    return {c.name: ensure_built(c, out) for c in chosen}
