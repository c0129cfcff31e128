"""The kubeconfig guard refuses every cluster that is not a FluxUp sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fluxup.errors import SandboxError
from fluxup.sandbox.guard import STATE_FILE, check_sandbox_kubeconfig


def _kubeconfig(cluster: str, server: str) -> str:
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: {cluster}\n  cluster:\n    server: {server}\n"
        f"contexts:\n- name: ctx\n  context:\n    cluster: {cluster}\n    user: u\n"
        "users:\n- name: u\n  user: {}\ncurrent-context: ctx\n"
    )


@pytest.mark.parametrize(
    ("cluster", "server", "token", "reason"),
    [
        ("fluxup-sandbox-abc", "https://127.0.0.1:6443", "abc", None),
        ("prod-cluster", "https://127.0.0.1:6443", "abc", "not a FluxUp sandbox"),
        ("fluxup-sandbox-abc", "https://10.1.2.3:6443", "abc", "not on loopback"),
        ("fluxup-sandbox-abc", "https://127.0.0.1:6443", "other", "token does not match"),
        ("fluxup-sandbox-abc", "https://127.0.0.1:6443", None, "no sandbox state"),
    ],
)
def test_guard_table(
    tmp_path: Path, cluster: str, server: str, token: str | None, reason: str | None
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(_kubeconfig(cluster, server))
    if token is not None:
        (tmp_path / STATE_FILE).write_text(json.dumps({"token": token}))
    if reason is None:
        assert check_sandbox_kubeconfig(path) == "abc"
    else:
        with pytest.raises(SandboxError, match=reason):
            check_sandbox_kubeconfig(path)


def test_guard_rejects_missing_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="does not exist"):
        check_sandbox_kubeconfig(tmp_path / "nope")
    bad = tmp_path / "bad"
    bad.write_text("{ not: [yaml")
    with pytest.raises(SandboxError, match="not valid YAML"):
        check_sandbox_kubeconfig(bad)
    bad.write_text("current-context: nowhere\n")
    with pytest.raises(SandboxError, match="current-context"):
        check_sandbox_kubeconfig(bad)


def test_fixtures_abort_on_foreign_kubeconfig(tmp_path: Path) -> None:
    """A whole pytest session pointed at a non-sandbox kubeconfig stops before any test."""
    foreign = tmp_path / "kubeconfig"
    foreign.write_text(_kubeconfig("kind-prod", "https://127.0.0.1:6443"))
    probe = tmp_path / "test_probe.py"
    marker = tmp_path / "ran"
    probe.write_text(
        "def test_uses_cluster(sandbox):\n"
        f"    open({str(marker)!r}, 'w').write('touched the cluster')\n"
    )
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, FLUXUP_KUBECONFIG=str(foreign))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.conftest",
         f"--rootdir={tmp_path}", "-c", str(repo / "pyproject.toml"), str(probe), "-q"],
        capture_output=True, text=True, env=env, cwd=repo,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 3, output
    assert "not a FluxUp sandbox" in output
    assert not marker.exists()
