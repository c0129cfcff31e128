"""Install third-party CRDs into a sandbox from the real projects' published modules.

Called by :func:`fluxup.sandbox.controlplane.up`. The Flux (source, kustomize, helm,
notification) CRDs and the VolumeSnapshot CRDs are read from the Go module cache of
the exact versions the sandbox builds (:mod:`fluxup.sandbox.assets`), never from
hand-written copies, and applied with server-side apply.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from fluxup.sandbox import assets

if TYPE_CHECKING:
    from fluxup.sandbox.controlplane import Sandbox

__all__ = ["apply_files", "install_third_party_crds"]


def apply_files(sb: Sandbox, files: list[Path]) -> None:
    """Server-side apply ``files`` (as field manager ``fluxup-sandbox``)."""
    args = ["apply", "--server-side", "--force-conflicts", "--field-manager=fluxup-sandbox"]
    for path in files:
        args += ["-f", str(path)]
    sb.kubectl(*args)


def install_third_party_crds(sb: Sandbox, out: TextIO = sys.stdout) -> list[Path]:
    """Apply the Flux and VolumeSnapshot CRDs and wait until they are Established."""
    files = assets.flux_crd_files() + assets.snapshot_crd_files()
    apply_files(sb, files)
    sb.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    print(f"  installed {len(files)} Flux and VolumeSnapshot CRDs from the module cache",
          file=out, flush=True)
    return files
