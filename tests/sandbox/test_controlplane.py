"""The sandbox control plane: real etcd + kube-apiserver processes, up/down/restart."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest

from fluxup.errors import SandboxError
from fluxup.sandbox import controlplane
from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.pki import new_token
from fluxup.sandbox.processes import free_port, is_ours, stop_process

pytestmark = pytest.mark.sandbox


def test_session_sandbox_serves_real_kubernetes(sandbox: Sandbox) -> None:
    version = json.loads(sandbox.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.36.3"
    status, body = sandbox.get("/readyz")
    assert (status, body) == (200, "ok")
    # RBAC is on: an unprivileged identity is refused
    denied = sandbox.kubectl("get", "pods", "--as=nobody", check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()


def test_flux_and_snapshot_crds_are_served(sandbox: Sandbox) -> None:
    resources = sandbox.kubectl("api-resources", "-o", "name").stdout.split()
    for name in (
        "helmreleases.helm.toolkit.fluxcd.io",
        "ocirepositories.source.toolkit.fluxcd.io",
        "gitrepositories.source.toolkit.fluxcd.io",
        "helmrepositories.source.toolkit.fluxcd.io",
        "kustomizations.kustomize.toolkit.fluxcd.io",
        "volumesnapshots.snapshot.storage.k8s.io",
        "volumesnapshotclasses.snapshot.storage.k8s.io",
        "volumesnapshotcontents.snapshot.storage.k8s.io",
    ):
        assert name in resources


def test_up_down_restart_keeps_data(tmp_path: Path) -> None:
    out = io.StringIO()
    sb = controlplane.up(tmp_path / "sb", out=out)
    try:
        assert "control plane ready" in out.getvalue()
        assert controlplane.up(tmp_path / "sb", out=io.StringIO()).pids == sb.pids  # idempotent
        sb.kubectl("create", "configmap", "survivor", "--from-literal=k=v")
        pids = dict(sb.pids)
        stopped = controlplane.down(sb.dir, out=io.StringIO())
        assert sorted(stopped) == ["etcd", "kube-apiserver"]
        assert not any(is_ours(pid, sb.token) for pid in pids.values())
        sb = controlplane.up(tmp_path / "sb", out=io.StringIO())
        data = sb.kubectl("get", "configmap", "survivor", "-o", "jsonpath={.data.k}").stdout
        assert data == "v"
    finally:
        controlplane.down(tmp_path / "sb", out=io.StringIO())
    assert (tmp_path / "sb" / "etcd").is_dir()  # down removes nothing


def test_down_on_a_non_sandbox_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="is not a sandbox"):
        controlplane.down(tmp_path)


def test_etcd_whose_port_was_taken_starts_again_on_fresh_ports(tmp_path: Path) -> None:
    """A port that was free when chosen can be taken before etcd binds it."""
    sb = Sandbox(tmp_path, new_token())
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        sb.ports.update(etcd=taken, **{"etcd-peer": free_port()})
        out = io.StringIO()
        try:
            controlplane._start_etcd(sb, out)
            assert sb.ports["etcd"] != taken
            assert "etcd exited during start-up" in out.getvalue()
            assert controlplane._etcd_healthy(sb.ports["etcd"])
            assert controlplane.load(tmp_path).ports == sb.ports
        finally:
            if "etcd" in sb.pids:
                stop_process(sb.pids["etcd"], sb.token)
