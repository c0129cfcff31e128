"""Refuse to touch any cluster that is not a FluxUp sandbox.

Called by the pytest fixtures and the demo before they create or delete anything.
A kubeconfig passes only if its current context names a ``fluxup-sandbox-<token>``
cluster served on the loopback address, and a ``sandbox.json`` beside it carries the
same token (so copying a cluster name into a real kubeconfig is not enough).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ruamel.yaml import YAML

from fluxup.errors import SandboxError
from fluxup.sandbox.pki import CLUSTER_PREFIX

__all__ = ["STATE_FILE", "check_sandbox_kubeconfig"]

STATE_FILE = "sandbox.json"


def _current_cluster(config: dict[str, Any]) -> tuple[str, str]:
    current = config.get("current-context")
    contexts = {c.get("name"): c.get("context", {}) for c in config.get("contexts") or []}
    if current not in contexts:
        raise SandboxError(f"kubeconfig has no usable current-context (found {current!r})")
    cluster_name = contexts[current].get("cluster", "")
    clusters = {c.get("name"): c.get("cluster", {}) for c in config.get("clusters") or []}
    if cluster_name not in clusters:
        raise SandboxError(
            f"kubeconfig context {current!r} names unknown cluster {cluster_name!r}"
        )
    return cluster_name, str(clusters[cluster_name].get("server", ""))


def check_sandbox_kubeconfig(path: Path) -> str:
    """Return the sandbox token of ``path``; raise :class:`SandboxError` saying why not."""
    if not path.is_file():
        raise SandboxError(f"kubeconfig {path} does not exist")
    try:
        config = YAML(typ="safe").load(path.read_text())
    except Exception as exc:  # ruamel raises many types; any of them means "not ours"
        raise SandboxError(f"kubeconfig {path} is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise SandboxError(f"kubeconfig {path} is not a kubeconfig mapping")
    cluster_name, server = _current_cluster(config)
    if not cluster_name.startswith(CLUSTER_PREFIX):
        raise SandboxError(
            f"refusing to use {path}: its cluster {cluster_name!r} is not a FluxUp sandbox "
            f"(start one with `fluxup sandbox up --dir DIR`)"
        )
    host = urlparse(server).hostname
    if host not in {"127.0.0.1", "localhost"}:
        raise SandboxError(f"refusing to use {path}: server {server} is not on loopback")
    token = cluster_name.removeprefix(CLUSTER_PREFIX)
    state_path = path.parent / STATE_FILE
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        raise SandboxError(f"refusing to use {path}: no sandbox state at {state_path}") from None
    if state.get("token") != token:
        raise SandboxError(f"refusing to use {path}: token does not match {state_path}")
    return token
