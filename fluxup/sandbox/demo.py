"""``fluxup demo``: FluxUp on the local sandbox, ready for a person to try in a browser.

:func:`start_demo` brings up a fresh full sandbox (real Flux, KWOK nodes, CSI snapshots,
a Git server), starts Dex (the OpenID provider, plain HTTP on loopback) with one demo
user, FluxUp's webhook and its operator (shipped RBAC, serving the web UI with OIDC
login), binds the user as ``fluxup-approver`` in the app's namespace, puts the seeded
``demo-helm`` app under management, writes known data into its two volumes, runs the
real Renovate (``fluxup scan``) and clones the fleet repository for pushing by hand. It
returns the :class:`DemoSite` with the walkthrough (:mod:`fluxup.sandbox.walkthrough`).

:func:`run_demo` (the CLI) prints progress while that happens, then the UI address, the
login and the walkthrough, and waits: Ctrl-C (or SIGTERM/SIGHUP) stops every process the
demo started (``fluxup sandbox down``, which finds each by the sandbox's recorded PIDs and
its token). ``--detach`` leaves it running for ``make demo-down``; ``--story`` first plays
the automated story on the second app (:mod:`fluxup.sandbox.demo_story`).

Every run starts from a fresh directory: a directory an earlier demo made (it holds
:data:`MARKER`) is wiped when nothing of it runs; any other non-empty one is refused.
"""

from __future__ import annotations

import io
import json
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from cryptography.fernet import Fernet

from fluxup.errors import SandboxError
from fluxup.sandbox.cluster import csi_state_dir
from fluxup.sandbox.controlplane import Sandbox, down, load, start_component, up
from fluxup.sandbox.dex import Dex, DexUser, start_dex
from fluxup.sandbox.fleet import Fleet
from fluxup.sandbox.processes import free_port, is_ours, wait_until
from fluxup.sandbox.renovate import ensure_renovate, scan_env
from fluxup.sandbox.seed import DEMO_APPS, DemoApp
from fluxup.sandbox.stack import Stack, start_stack, ui_healthy
from fluxup.sandbox.walkthrough import Walkthrough, build_walkthrough

__all__ = ["DATA_FILE", "MARKER", "DemoSite", "read_data", "run_demo", "start_demo",
           "write_data"]

#: the app of the walkthrough, and the versions it goes through
APP: DemoApp = DEMO_APPS[0]
START, APPROVE, PUSH = "1.0.0", "1.1.0", "1.2.0"
USER, GROUP = "demo", "fluxup-demo"
CHART = "demo-app"  # the chart every seeded app installs
#: a file in the directory saying the demo made it (so the next run may wipe it)
MARKER = "demo.json"
#: the machine-readable walkthrough (what is printed), for the browser test; mode 0600
WALKTHROUGH = "walkthrough.json"
DATA_FILE = "demo-data.txt"

Say = Callable[[str], None]


@dataclass
class DemoSite:
    """What :func:`start_demo` started."""

    sandbox: Sandbox
    stack: Stack
    dex: Dex
    fleet: Fleet
    walkthrough: Walkthrough
    ready_seconds: float


def _get(sb: Sandbox, *args: str) -> dict[str, Any]:
    return sb.get_json(*args) or {}


def _ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def prepare_directory(directory: Path) -> None:
    """Make ``directory`` ready for a fresh demo: wipe an earlier demo's (when nothing of
    it runs), refuse a running one or a non-empty directory the demo did not make."""
    if not directory.exists() or not any(directory.iterdir()):
        return
    if not (directory / MARKER).exists():
        raise SandboxError(f"{directory} is not empty and was not made by `fluxup demo`; "
                           "choose another --dir (the demo starts from a fresh directory)")
    try:
        running = [name for name, alive in load(directory).running().items() if alive]
    except SandboxError:
        running = []
    if running:
        raise SandboxError(f"a demo is already running from {directory} "
                           f"({', '.join(running)}); stop it first: make demo-down "
                           f"(fluxup sandbox down --dir {directory})")
    shutil.rmtree(directory)


def managed_pvcs(sb: Sandbox, app: DemoApp) -> list[str]:
    status = _get(sb, "managedapp", app.name, "-n", app.namespace).get("status") or {}
    return [str(p["name"]) for p in status.get("pvcs") or []]


def volume_dir(sb: Sandbox, namespace: str, pvc: str) -> Path:
    """The sandbox CSI driver's directory behind ``pvc`` (what the app's pod would mount)."""
    volume = _get(sb, "pvc", pvc, "-n", namespace)["spec"]["volumeName"]
    handle = _get(sb, "pv", volume)["spec"]["csi"]["volumeHandle"]
    return csi_state_dir(sb) / str(handle)


def _check_running(sb: Sandbox) -> None:
    if not sb.running().get("kube-apiserver"):
        raise SandboxError(f"the demo in {sb.dir} is not running; start it with `make demo` "
                           f"(fluxup demo --dir {sb.dir})")


def read_data(sb: Sandbox, app: DemoApp = APP) -> dict[str, bytes]:
    """The app's data file in each of its volumes (PVC name → bytes)."""
    _check_running(sb)
    return {pvc: (volume_dir(sb, app.namespace, pvc) / DATA_FILE).read_bytes()
            for pvc in managed_pvcs(sb, app)}


def write_data(sb: Sandbox, text: str, app: DemoApp = APP) -> dict[str, bytes]:
    """Write ``text`` (one line per volume, naming it) as the app would; return it."""
    _check_running(sb)
    written = {}
    for pvc in managed_pvcs(sb, app):
        content = f"{text} ({pvc})\n".encode()
        (volume_dir(sb, app.namespace, pvc) / DATA_FILE).write_bytes(content)
        written[pvc] = content
    return written


def manage(sb: Sandbox, fleet: Fleet, app: DemoApp) -> dict[str, Any]:
    """Put ``app`` (seeded at :data:`START`) under FluxUp; return the Ready ManagedApp."""
    fleet.wait_released(app, START)
    sb.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
        "metadata": {"name": app.name, "namespace": app.namespace},
        "spec": {"helmReleaseRef": {"name": app.name},
                 "volumeSnapshots": {"retentionPolicy": {"keepLast": 3}}}}))
    return wait_until(f"the ManagedApp {app.namespace}/{app.name} to become Ready", lambda: (
        lambda obj: obj if _ready(obj) else None)(_get(sb, "managedapp", app.name, "-n",
                                                       app.namespace)), 120)


def _start_scan(sb: Sandbox, stack: Stack, fleet: Fleet) -> int:
    """Start ``fluxup scan`` (the real Renovate, as the operator's ServiceAccount) as a
    sandbox process, so that stopping the demo stops it too; return its PID."""
    env = scan_env(ensure_renovate(), stack.work / "operator.kubeconfig",
                   sb.dir / "scan-work", fleet.registry_host)
    start_component(sb, "renovate-scan", [sys.executable, "-m", "fluxup", "scan"],
                    io.StringIO(), env=env)
    return sb.pids["renovate-scan"]


def _finish_scan(sb: Sandbox, pid: int, say: Say) -> None:
    log = sb.logs / "renovate-scan.log"
    wait_until("the Renovate scan", lambda: not is_ours(pid, sb.token), 300, log)
    sb.pids.pop("renovate-scan", None)
    sb.save()
    text = log.read_text(errors="replace")
    if "renovate-scan exited with status 0" not in text:
        say(f"the scan did not fully succeed (log {log}): {text.strip()[-400:]}")
    status = _get(sb, "managedapp", APP.name, "-n", APP.namespace).get("status") or {}
    found = ", ".join(f"{u.get('source')} {u.get('version')}"
                      for u in status.get("availableUpdates") or [])
    say(f"Renovate found for {APP.name}: {found or 'no updates'}")


def _clone(sb: Sandbox, fleet: Fleet, checkout: Path) -> None:
    """Clone the fleet repository for a person to push to by hand: the clone reads the
    Git server's password from the sandbox (a credential helper), never stores it."""
    password_file = sb.dir / "git" / "password"
    helper = (f"!f() {{ test \"$1\" = get || exit 0; echo username={fleet.credentials.username}; "
              f"echo \"password=$(cat '{password_file}')\"; }}; f")
    checkout.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "-c", f"credential.helper={helper}", "clone", "-q",
                    fleet.repo_url, str(checkout)], check=True, capture_output=True,
                   timeout=60)
    for key, value in (("credential.helper", helper), ("user.name", "Demo Developer"),
                       ("user.email", "developer@fluxup.invalid")):
        subprocess.run(["git", "-C", str(checkout), "config", key, value], check=True,
                       capture_output=True, timeout=30)


def start_demo(directory: Path, out: TextIO = sys.stdout,
               say: Say | None = None) -> DemoSite:
    """Bring up everything the walkthrough needs in ``directory`` (fresh); see the module
    docstring. Everything started is a sandbox process of ``directory``."""
    started = time.monotonic()
    say = say or (lambda text: print(text, file=out, flush=True))
    directory = directory.resolve()
    prepare_directory(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text(json.dumps({"made_by": "fluxup demo"}) + "\n")
    say("bringing up the full sandbox (etcd, kube-apiserver, Flux, CSI, Git, charts) ...")
    sb = up(directory, out=out, full=True)
    fleet = Fleet.of(sb)
    port = sb.ports.setdefault("fluxup-ui", free_port())
    url = f"http://127.0.0.1:{port}"
    user = DexUser(USER, secrets.token_urlsafe(9), (GROUP,))
    say("starting Dex (OpenID provider) and FluxUp (webhook, operator serving the UI) ...")
    dex = start_dex(sb, sb.dir / "dex", [f"{url}/auth/callback"], [user], out, tls=False)
    stack = start_stack(sb, sb.dir / "fluxup", out=out, operator_env={
        "FLUXUP_UI_ENABLED": "true", "FLUXUP_UI_HOST": "127.0.0.1",
        "FLUXUP_UI_PORT": str(port), "FLUXUP_UI_PUBLIC_URL": url,
        "FLUXUP_UI_OIDC_ISSUER": dex.issuer, "FLUXUP_UI_OIDC_CLIENT_ID": dex.client.client_id,
        "FLUXUP_UI_OIDC_CLIENT_SECRET": dex.client.secret,
        "FLUXUP_UI_SESSION_KEYS": Fernet.generate_key().decode(),
    })
    say(f"putting {APP.namespace}/{APP.name} under FluxUp ...")
    managed = manage(sb, fleet, APP)
    sb.kubectl("create", "rolebinding", f"{GROUP}-approver", "-n", APP.namespace,
               "--clusterrole=fluxup-approver", f"--group=oidc:{GROUP}")
    scan = _start_scan(sb, stack, fleet)
    say("running Renovate 44 (lookup only) over the fleet repository: fluxup scan ...")
    pvcs = [p["name"] for p in managed["status"]["pvcs"]]
    write_data(sb, f"{APP.name} data written while {START} ran")
    say(f"wrote the app's data ({DATA_FILE}) into its volumes {', '.join(pvcs)}")
    checkout = sb.dir / "demo" / "fleet"
    _clone(sb, fleet, checkout)
    wait_until("the web UI", lambda: ui_healthy(url), 60, stack.operator_log)
    _finish_scan(sb, scan, say)
    walkthrough = build_walkthrough(
        ui_url=url, login=user.email, password=user.password, namespace=APP.namespace,
        app=APP.name, kubeconfig=sb.kubeconfig,
        path=(sb.bin("kubectl").parent, Path(sys.executable).parent), sandbox_dir=sb.dir,
        checkout=checkout, release_file=f"flux/apps/{APP.name}/helmrelease.yaml",
        chart=CHART, current=START, approve=APPROVE, push=PUSH)
    path = sb.dir / WALKTHROUGH
    path.touch(mode=0o600)  # holds the demo login's password
    path.write_text(walkthrough.to_json())
    return DemoSite(sb, stack, dex, fleet, walkthrough, time.monotonic() - started)


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP end the demo like Ctrl-C does (everything is stopped); so does
    SIGINT even when the demo was started with it ignored (in the background of a script)."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, interrupt)
                for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def stop_demo(directory: Path, out: TextIO = sys.stdout) -> list[str]:
    """Stop every process of the demo in ``directory`` (another Ctrl-C, SIGTERM or SIGHUP
    meanwhile is ignored: a half-done stop would leave processes behind)."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in signals}
    try:
        return down(directory.resolve(), out)
    except SandboxError:
        return []  # nothing was started yet
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_demo(directory: Path, out: TextIO = sys.stdout, *, story: bool = False,
             detach: bool = False) -> int:
    """The ``fluxup demo`` command (see the module docstring)."""
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", file=out, flush=True)

    directory = directory.resolve()
    prepare_directory(directory)  # refuses a running demo: nothing of it is stopped below
    keep = False
    with _signals_interrupt():
        try:
            site = start_demo(directory, out, say)
            if story:
                from fluxup.sandbox.demo_story import play_story

                if play_story(site, say) != 0:
                    return 1
            print(site.walkthrough.render(time.monotonic() - started), file=out, flush=True)
            if detach:
                keep = True
                print(f"Left running (--detach): `make demo-down` or `fluxup sandbox down "
                      f"--dir {site.sandbox.dir}` stops it.", file=out, flush=True)
                return 0
            print("The demo runs until you press Ctrl-C.", file=out, flush=True)
            _watch(site.sandbox, say)
            return 0  # not reached: _watch returns only by Ctrl-C
        except KeyboardInterrupt:
            print("\nstopping the demo ...", file=out, flush=True)
            return 0
        finally:
            if not keep:
                stopped = stop_demo(directory, out)
                print(f"stopped {len(stopped)} process(es); the sandbox's files stay in "
                      f"{directory} (logs in {directory / 'logs'})", file=out, flush=True)


def _watch(sb: Sandbox, say: Say) -> None:
    """Wait for Ctrl-C; say once when a demo process dies on its own."""
    reported: set[str] = set()
    while True:
        time.sleep(2)
        for name, alive in sb.running().items():
            if not alive and name not in reported:
                reported.add(name)
                say(f"{name} has stopped; its log: {sb.logs / (name + '.log')}")
