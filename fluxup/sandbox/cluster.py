"""The full sandbox: scheduling, fake nodes, Flux, CSI snapshots, on the control plane.

Called by :func:`fluxup.sandbox.controlplane.up` when ``--full`` is asked for. Starts
kube-controller-manager and kube-scheduler, KWOK with one fake node (Pods become
Running/Ready and are deleted on scale-down), the Flux source/kustomize/helm (and,
when built, notification) controllers, and the CSI stack (hostpath driver,
csi-provisioner, snapshot-controller, csi-snapshotter) with StorageClasses and a
VolumeSnapshotClass. Every process is a sandbox process (logged, recorded, stopped by
``down``); every flag here was checked against the binaries' ``--help``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from fluxup.errors import SandboxError
from fluxup.sandbox import assets, gobuild
from fluxup.sandbox.charts import package_demo_charts, start_chart_repo
from fluxup.sandbox.components import component
from fluxup.sandbox.csidriver import compile_spec
from fluxup.sandbox.gitserver import GitCredentials, ensure_credentials, start_git_server
from fluxup.sandbox.processes import free_port, is_ours, wait_until
from fluxup.sandbox.registry import push_demo_artifacts, start_registry
from fluxup.sandbox.seed import build_flux_bootstrap, seed_repo

if TYPE_CHECKING:
    from fluxup.sandbox.controlplane import Sandbox

__all__ = [
    "CSI_DRIVER",
    "NODE_NAME",
    "csi_state_dir",
    "start_cluster_components",
]

NODE_NAME = "kwok-node-0"
BOOTSTRAP_SECRET = "fleet-git-auth"
CSI_DRIVER = "hostpath.csi.k8s.io"


def _bin(owner: str, name: str) -> str:
    path = gobuild.bin_dir(component(owner)) / name
    if not path.exists():
        raise SandboxError(f"{name} is not built; run `fluxup sandbox build`")
    return str(path)


def _built(owner: str) -> bool:
    try:
        return (gobuild.bin_dir(component(owner)) / ".complete").exists()
    except KeyError:
        return False


def csi_state_dir(sb: Sandbox) -> Path:
    """Where the hostpath driver keeps volume directories and snapshot archives."""
    return sb.dir / "csi-data"


def _kube_component_args(sb: Sandbox, port: int) -> list[str]:
    kubeconfig = str(sb.kubeconfig)
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        "--v=1",
    ]


def _node_manifest() -> str:
    return f"""apiVersion: v1
kind: Node
metadata:
  name: {NODE_NAME}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: {NODE_NAME}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  allocatable: {{cpu: "32", memory: 256Gi, pods: "250"}}
  capacity: {{cpu: "32", memory: 256Gi, pods: "250"}}
"""


def _storage_manifest() -> str:
    return f"""apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata:
  name: {CSI_DRIVER}
spec:
  attachRequired: false
  podInfoOnMount: true
  volumeLifecycleModes: [Persistent]
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: csi-hostpath
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: {CSI_DRIVER}
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: csi-hostpath-wffc
provisioner: {CSI_DRIVER}
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata:
  name: csi-hostpath-snapclass
  annotations:
    snapshot.storage.kubernetes.io/is-default-class: "true"
driver: {CSI_DRIVER}
deletionPolicy: Delete
"""


def _http_ok(url: str) -> Callable[[], bool]:
    import urllib.request

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    return probe


def start_cluster_components(sb: Sandbox, out: TextIO = sys.stdout) -> dict[str, float]:
    """Start everything of the full sandbox that is not running; return seconds per part."""
    from fluxup.sandbox.controlplane import start_component

    timings: dict[str, float] = {}

    def step(name: str, fn: Callable[[], None]) -> None:
        began = time.monotonic()
        fn()
        timings[name] = time.monotonic() - began

    pki = sb.pki
    for port in (
        "kcm",
        "scheduler",
        "kwok",
        "source-storage",
        "source-metrics",
        "source-health",
        "kustomize-metrics",
        "kustomize-health",
        "helm-metrics",
        "helm-health",
        "notification-events",
        "notification-receiver",
        "notification-metrics",
        "notification-health",
    ):
        sb.ports.setdefault(port, free_port())
    sb.save()

    def controller_manager() -> None:
        start_component(
            sb,
            "kube-controller-manager",
            [
                _bin("kubernetes", "kube-controller-manager"),
                *_kube_component_args(sb, sb.ports["kcm"]),
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_crt}",
                f"--cluster-signing-cert-file={pki.ca_crt}",
                f"--cluster-signing-key-file={pki.ca_key}",
                "--use-service-account-credentials=false",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--concurrent-deployment-syncs=10",
                "--concurrent-statefulset-syncs=10",
                "--concurrent-gc-syncs=10",
            ],
            out,
        )
        start_component(
            sb,
            "kube-scheduler",
            [
                _bin("kubernetes", "kube-scheduler"),
                *_kube_component_args(sb, sb.ports["scheduler"]),
            ],
            out,
        )

    def kwok() -> None:
        stages = ",".join(str(p) for p in assets.kwok_stage_files())
        start_component(
            sb,
            "kwok",
            [
                _bin("kwok", "kwok"),
                f"--kubeconfig={sb.kubeconfig}",
                f"--config={stages}",
                "--manage-all-nodes=true",
                "--node-lease-duration-seconds=40",
                "--cidr=10.244.0.0/16",
                "--node-ip=127.0.0.1",
                f"--server-address=127.0.0.1:{sb.ports['kwok']}",
            ],
            out,
        )
        sb.kubectl(
            "apply",
            "--server-side",
            "--field-manager=fluxup-sandbox",
            "-f",
            "-",
            input=_node_manifest(),
        )
        sb.kubectl("wait", "--for=condition=Ready", f"node/{NODE_NAME}", "--timeout=60s")

    def csi() -> None:
        state = csi_state_dir(sb)
        socket = sb.dir / "csi" / "csi.sock"
        socket.parent.mkdir(parents=True, exist_ok=True)
        state.mkdir(parents=True, exist_ok=True)
        address = f"unix://{socket}"
        # the upstream hostpath driver cannot be built here (see csidriver's docstring)
        generated = compile_spec(gobuild.cache_root() / "csi-python")
        start_component(
            sb,
            "csi-hostpath-driver",
            [
                sys.executable,
                "-m",
                "fluxup.sandbox.csidriver",
                f"--endpoint={address}",
                f"--nodeid={NODE_NAME}",
                f"--drivername={CSI_DRIVER}",
                f"--statedir={state}",
                f"--generated={generated.parent}",
            ],
            out,
        )
        wait_until("CSI socket", socket.exists, 30, sb.logs / "csi-hostpath-driver.log")
        sb.kubectl(
            "apply",
            "--server-side",
            "--field-manager=fluxup-sandbox",
            "-f",
            "-",
            input=_storage_manifest(),
        )
        common = [f"--kubeconfig={sb.kubeconfig}", "--leader-election=false"]
        start_component(
            sb,
            "csi-provisioner",
            [
                _bin("external-provisioner", "csi-provisioner"),
                f"--csi-address={socket}",
                *common,
                "--extra-create-metadata",
                "--timeout=300s",  # the sandbox driver copies bytes synchronously
                "--v=2",
            ],
            out,
            restart=True,  # exits when its driver connection fails
        )
        start_component(
            sb,
            "snapshot-controller",
            [
                _bin("external-snapshotter", "snapshot-controller"),
                *common,
                "--v=2",
            ],
            out,
        )
        start_component(
            sb,
            "csi-snapshotter",
            [
                _bin("external-snapshotter", "csi-snapshotter"),
                f"--csi-address={socket}",
                *common,
                "--timeout=300s",  # the sandbox driver copies bytes synchronously
                "--v=2",
            ],
            out,
            restart=True,  # exits when its driver connection fails
        )

    def flux() -> None:
        sb.kubectl("create", "namespace", "flux-system", check=False)
        env = {"KUBECONFIG": str(sb.kubeconfig), "RUNTIME_NAMESPACE": "flux-system"}
        events: list[str] = []
        if _built("notification-controller"):
            start_component(
                sb,
                "notification-controller",
                [
                    _bin("notification-controller", "notification-controller"),
                    f"--events-addr=127.0.0.1:{sb.ports['notification-events']}",
                    f"--receiverAddr=127.0.0.1:{sb.ports['notification-receiver']}",
                    f"--metrics-addr=127.0.0.1:{sb.ports['notification-metrics']}",
                    f"--health-addr=127.0.0.1:{sb.ports['notification-health']}",
                    "--log-encoding=console",
                ],
                out,
                env=env,
            )
            events = [f"--events-addr=http://127.0.0.1:{sb.ports['notification-events']}"]
        (sb.dir / "flux-artifacts").mkdir(exist_ok=True)
        storage = f"127.0.0.1:{sb.ports['source-storage']}"
        own_flags = {
            "source": [f"--storage-path={sb.dir / 'flux-artifacts'}",
                       f"--storage-addr={storage}", f"--storage-adv-addr={storage}"],
            "kustomize": ["--no-remote-bases=true"],
            "helm": [],
        }
        for name, flags in own_flags.items():
            controller = f"{name}-controller"
            start_component(sb, controller, [
                _bin(controller, controller), *flags,
                f"--metrics-addr=127.0.0.1:{sb.ports[name + '-metrics']}",
                f"--health-addr=127.0.0.1:{sb.ports[name + '-health']}",
                "--log-encoding=console", "--concurrent=4", "--requeue-dependency=2s",
                *events,
            ], out, env=env)
        for name in ("source", "kustomize", "helm"):
            wait_until(
                f"{name}-controller",
                _http_ok(f"http://127.0.0.1:{sb.ports[name + '-health']}/readyz"),
                60,
                sb.logs / f"{name}-controller.log",
            )

    def gitops() -> None:
        start_services(sb, out)

    step("controller-manager+scheduler", controller_manager)
    step("kwok", kwok)
    step("csi", csi)
    step("flux", flux)
    step("git+charts+registry+seed", gitops)
    return timings


def _running(sb: Sandbox, name: str) -> bool:
    return name in sb.pids and is_ours(sb.pids[name], sb.token)


def start_services(sb: Sandbox, out: TextIO = sys.stdout) -> None:
    """Git server, chart repository, OCI registry, the seeded fleet repo, Flux bootstrap."""
    git_dir = sb.dir / "git"
    if not _running(sb, "git-server"):
        pid, port, _ = start_git_server(git_dir, sb.token, sb.logs, port=sb.ports.get("git"))
        sb.pids["git-server"], sb.ports["git"] = pid, port
    credentials = ensure_credentials(git_dir)
    chart_url = f"http://127.0.0.1:{sb.ports.get('charts', 0)}"
    if not _running(sb, "chart-repo"):
        pid, chart_url = start_chart_repo(
            sb.dir / "charts", sb.token, sb.logs, port=sb.ports.get("charts")
        )
        sb.pids["chart-repo"], sb.ports["charts"] = pid, int(chart_url.rsplit(":", 1)[1])
    if not _running(sb, "oci-registry"):
        pid, port = start_registry(
            sb.dir / "registry", sb.token, sb.logs, port=sb.ports.get("registry")
        )
        sb.pids["oci-registry"], sb.ports["registry"] = pid, port
        push_demo_artifacts(f"http://127.0.0.1:{port}", package_demo_charts(sb.dir / "charts"))
    sb.save()
    registry_host = f"127.0.0.1:{sb.ports['registry']}"
    repo_url = seed_repo(
        f"http://127.0.0.1:{sb.ports['git']}", credentials, chart_url, registry_host
    )
    sb.kubectl(
        "apply",
        "--server-side",
        "--field-manager=fluxup-sandbox",
        "-f",
        "-",
        input=build_flux_bootstrap(repo_url, BOOTSTRAP_SECRET, credentials),
    )
    print(
        f"  Git server {repo_url} (user {credentials.username}, password in "
        f"{git_dir / 'password'}); charts {chart_url}; OCI registry {registry_host}",
        file=out,
        flush=True,
    )


def fleet_url(sb: Sandbox) -> str:
    """URL of the seeded fleet repository."""
    return f"http://127.0.0.1:{sb.ports['git']}/fleet.git"


def git_credentials(sb: Sandbox) -> GitCredentials:
    return ensure_credentials(sb.dir / "git")
