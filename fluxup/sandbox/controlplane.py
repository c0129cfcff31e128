"""The sandbox control plane: etcd and kube-apiserver as local processes.

``fluxup sandbox up/down/kubeconfig`` and the pytest fixtures call :func:`up` and
:func:`down`. A sandbox is a directory: PKI, etcd data, logs, the admin kubeconfig and
``sandbox.json`` (token, ports, PIDs). ``up`` on a directory that is already running
only checks it; ``up`` after ``down`` restarts with the same data. It never touches
anything outside the directory except the build cache.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from fluxup.errors import SandboxError
from fluxup.sandbox import gobuild
from fluxup.sandbox.components import component
from fluxup.sandbox.guard import STATE_FILE, check_sandbox_kubeconfig
from fluxup.sandbox.pki import SandboxPKI, build_kubeconfig, ensure_pki, new_token
from fluxup.sandbox.processes import (
    free_port,
    is_ours,
    start_process,
    stop_process,
    stop_strays,
    wait_until,
)

__all__ = ["Sandbox", "down", "load", "up"]


@dataclass
class Sandbox:
    """A sandbox directory and what runs from it."""

    dir: Path
    token: str
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    full: bool = False

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def pki(self) -> SandboxPKI:
        return SandboxPKI(self.dir / "pki")

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def bin(self, name: str) -> Path:
        """Path of a built sandbox binary such as ``kubectl``."""
        return _binary(name)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the sandbox's kubectl against this sandbox; raise on failure if ``check``."""
        cmd = [str(self.bin("kubectl")), f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise SandboxError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def get_json(self, *args: str) -> dict[str, Any] | None:
        """``kubectl get ARGS -o json`` parsed; ``None`` when kubectl fails (e.g. not found)."""
        proc = self.kubectl("get", *args, "-o", "json", check=False)
        if proc.returncode != 0:
            return None
        parsed: dict[str, Any] = json.loads(proc.stdout)
        return parsed

    def save(self) -> None:
        data = {"token": self.token, "ports": self.ports, "pids": self.pids, "full": self.full}
        tmp = self.dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.dir / STATE_FILE)

    def running(self) -> dict[str, bool]:
        return {name: is_ours(pid, self.token) for name, pid in self.pids.items()}

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_crt))
        ctx.load_cert_chain(str(self.pki.admin_crt), str(self.pki.admin_key))
        return ctx

    def get(self, path: str, timeout: float = 5) -> tuple[int, str]:
        """GET ``path`` from the apiserver as admin; return (status, body)."""
        try:
            with urllib.request.urlopen(
                self.server + path, context=self.ssl_context(), timeout=timeout
            ) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")


def _binary(name: str) -> Path:
    owner = {"etcd": "etcd"}.get(name, "kubernetes")
    path = gobuild.bin_dir(component(owner)) / name
    if not path.exists():
        raise SandboxError(f"{name} is not built yet; run `fluxup sandbox build`")
    return path


def load(directory: Path) -> Sandbox:
    """Read the sandbox state of ``directory``."""
    try:
        data: dict[str, Any] = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        raise SandboxError(f"{directory} is not a sandbox (no readable {STATE_FILE})") from None
    return Sandbox(
        directory,
        data["token"],
        data.get("ports", {}),
        data.get("pids", {}),
        data.get("full", False),
    )


def _etcd_argv(sb: Sandbox) -> list[str]:
    client, peer = sb.ports["etcd"], sb.ports["etcd-peer"]
    return [
        str(_binary("etcd")),
        "--name=sandbox",
        f"--data-dir={sb.dir / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=sandbox=http://127.0.0.1:{peer}",
        "--unsafe-no-fsync=true",
        "--quota-backend-bytes=4294967296",
        "--auto-compaction-retention=1",
        "--log-level=warn",
    ]


def _apiserver_argv(sb: Sandbox, extra: Sequence[str]) -> list[str]:
    pki, port = sb.pki, sb.ports["apiserver"]
    argv = [
        str(_binary("kube-apiserver")),
        f"--etcd-servers=http://127.0.0.1:{sb.ports['etcd']}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--advertise-address=127.0.0.1",
        "--endpoint-reconciler-type=none",
        f"--tls-cert-file={pki.serving_crt}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_crt}",
        f"--service-account-issuer=https://127.0.0.1:{port}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        "--service-cluster-ip-range=10.96.0.0/16",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        f"--cert-dir={sb.dir / 'apiserver-certs'}",
        "--profiling=false",
        "--v=1",
    ]
    if not sb.full:  # nothing creates `default` ServiceAccounts without the controller-manager
        argv.append("--disable-admission-plugins=ServiceAccount")
    return argv + list(extra)


def _etcd_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def _apiserver_ready(sb: Sandbox) -> bool:
    try:
        status, _ = sb.get("/readyz", timeout=2)
    except OSError:
        return False
    return status == 200


def start_component(
    sb: Sandbox,
    name: str,
    argv: list[str],
    out: TextIO,
    env: dict[str, str] | None = None,
    restart: bool = False,
) -> None:
    """Start the sandbox process ``name`` unless it already runs; record its PID.
    ``restart``: start it again whenever it ends (see :func:`start_process`)."""
    if name in sb.pids and is_ours(sb.pids[name], sb.token):
        return
    sb.pids[name] = start_process(name, argv, sb.logs, sb.token, env=env, restart=restart)
    sb.save()
    print(
        f"  started {name} (pid {sb.pids[name]}, log {sb.logs / (name + '.log')})",
        file=out,
        flush=True,
    )


def _alive(sb: Sandbox, name: str) -> bool:
    return is_ours(sb.pids[name], sb.token)


def _start_etcd(sb: Sandbox, out: TextIO, attempts: int = 4) -> None:
    """Start etcd and wait until it is healthy.

    Its ports were free when chosen, but any process may take a free port (an outgoing
    connection's ephemeral port, another sandbox) before etcd binds it; an etcd that
    dies during start-up is retried on fresh ports, and the last failure is raised with
    the log's tail. Only a new sandbox moves ports (its half-made data directory is
    discarded); an existing one keeps the ports its data and apiserver know.
    """
    fresh = not (sb.dir / "etcd").exists()
    for attempt in range(1, attempts + 1):
        try:
            start_component(sb, "etcd", _etcd_argv(sb), out)
            wait_until(
                "etcd",
                lambda: _etcd_healthy(sb.ports["etcd"]),
                60,
                sb.logs / "etcd.log",
                lambda: _alive(sb, "etcd"),
            )
            return
        except SandboxError as exc:
            if attempt == attempts or ("etcd" in sb.pids and _alive(sb, "etcd")):
                raise
            print(f"  etcd exited during start-up ({str(exc).splitlines()[-1][:200]!r}); "
                  "retrying", file=out, flush=True)
            sb.pids.pop("etcd", None)
            if fresh:
                shutil.rmtree(sb.dir / "etcd", ignore_errors=True)
                sb.ports["etcd"], sb.ports["etcd-peer"] = free_port(), free_port()
            sb.save()
            time.sleep(2 ** attempt)


def up(directory: Path, out: TextIO = sys.stdout, full: bool = False) -> Sandbox:
    """Bring the sandbox in ``directory`` up (idempotent) and return it."""
    started = time.monotonic()
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    gobuild.ensure_all(None if full else ["etcd", "kubernetes"], out)
    try:
        sb = load(directory)
    except SandboxError:
        sb = Sandbox(directory, new_token())
    was_full = sb.full
    sb.full = sb.full or full
    for name in ("etcd", "etcd-peer", "apiserver"):
        sb.ports.setdefault(name, free_port())
    ensure_pki(sb.pki.dir)
    sb.kubeconfig.write_text(build_kubeconfig(sb.pki, sb.server, sb.token))
    sb.kubeconfig.chmod(0o600)
    sb.save()
    print(f"sandbox {directory} (token {sb.token})", file=out, flush=True)
    _start_etcd(sb, out)
    if full and not was_full and "kube-apiserver" in sb.pids:
        # the full sandbox needs ServiceAccount admission: restart the apiserver with it
        stop_process(sb.pids.pop("kube-apiserver"), sb.token)
    start_component(sb, "kube-apiserver", _apiserver_argv(sb, ()), out)
    wait_until(
        "kube-apiserver",
        lambda: _apiserver_ready(sb),
        180,
        sb.logs / "kube-apiserver.log",
        lambda: _alive(sb, "kube-apiserver"),
    )
    check_sandbox_kubeconfig(sb.kubeconfig)
    from fluxup.sandbox.addons import install_third_party_crds

    install_third_party_crds(sb, out)
    if sb.full:
        from fluxup.sandbox.cluster import start_cluster_components

        for part, seconds in start_cluster_components(sb, out).items():
            print(f"  {part} ready in {seconds:.1f}s", file=out, flush=True)
    what = "full sandbox" if sb.full else "control plane"
    print(
        f"{what} ready in {time.monotonic() - started:.1f}s: {sb.server}",
        file=out,
        flush=True,
    )
    return sb


def down(directory: Path, out: TextIO = sys.stdout) -> list[str]:
    """Stop every process the sandbox in ``directory`` started, then any process still
    carrying its token (one that left its process group); delete nothing."""
    sb = load(directory.resolve())
    stopped = []
    for name, pid in reversed(list(sb.pids.items())):
        if stop_process(pid, sb.token):
            stopped.append(name)
            print(f"  stopped {name} (pid {pid})", file=out, flush=True)
    strays = stop_strays(sb.token)
    if strays:
        print(f"  stopped {len(strays)} stray process(es) of this sandbox: "
              f"{', '.join(map(str, strays))}", file=out, flush=True)
    sb.pids = {}
    sb.save()
    return stopped
