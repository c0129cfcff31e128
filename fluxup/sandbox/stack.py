"""FluxUp itself on the sandbox: the webhook and the operator, as a user would run them.

Used by ``fluxup demo`` and by the end-to-end test fixtures. The webhook is its own
HTTPS process (certificates from :mod:`certs`), registered with FluxUp's own webhook
manifests pointed at it by URL (optionally confined to namespaces carrying a label).
The operator runs as the ``fluxup-operator`` ServiceAccount with exactly the shipped
ClusterRole (``manifests/operator/rbac.yaml``) and a real token from the TokenRequest
API. Both are sandbox processes: logged, recorded and stopped by ``sandbox down``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ruamel.yaml import YAML

from certs.files import CertFiles, ensure_cert_files
from fluxup.api.constants import OPERATOR_USERNAME
from fluxup.sandbox.controlplane import Sandbox, start_component
from fluxup.sandbox.processes import (
    free_port,
    group_alive,
    is_ours,
    stop_process,
    wait_until,
)
from webhook.local import build_local_configurations, parse_request_counts

__all__ = ["OPERATOR_USER", "REPO", "Stack", "start_stack", "ui_healthy"]

REPO = Path(__file__).resolve().parents[2]
OPERATOR_USER = OPERATOR_USERNAME


def _yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in YAML(typ="safe").load_all(path.read_text()) if d]


def _token_kubeconfig(sb: Sandbox, token: str) -> str:
    config = YAML(typ="safe").load(sb.kubeconfig.read_text())
    config["users"] = [{"name": "fluxup-operator", "user": {"token": token}}]
    for ctx in config["contexts"]:
        ctx["context"]["user"] = "fluxup-operator"
    out = io.StringIO()
    YAML(typ="safe").dump(config, out)
    return out.getvalue()


@dataclass
class Stack:
    """The running webhook and operator of one sandbox."""

    sandbox: Sandbox
    label: str | None
    webhook_port: int
    work: Path
    registered: list[dict[str, Any]]
    #: extra FLUXUP_* settings of the operator (notifications, ...); apply on restart
    operator_env: dict[str, str] = field(default_factory=dict)

    @property
    def metrics_port(self) -> int:
        return self.sandbox.ports.setdefault("fluxup-metrics", free_port())

    def operator_metrics(self) -> str:
        """The operator's ``/metrics`` text (its own port, plain HTTP)."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10
        ) as resp:
            return str(resp.read().decode())

    @property
    def certs(self) -> CertFiles:
        return CertFiles(self.work / "certs")

    @property
    def operator_log(self) -> Path:
        return self.sandbox.logs / "fluxup-operator.log"

    def enrol(self, namespace: str) -> None:
        """Put ``namespace`` under this stack's webhook (when confined to labelled ones)."""
        if self.label:
            key, value = self.label.split("=", 1)
            # an own field manager: Flux removes labels that plain kubectl edits added
            self.sandbox.kubectl("label", "--overwrite", "--field-manager=fluxup-e2e",
                                 "namespace", namespace, f"{key}={value}")

    def start_operator(self) -> None:
        env = {
            "FLUXUP_KUBECONFIG": str(self.work / "operator.kubeconfig"),
            "KUBECONFIG": str(self.work / "operator.kubeconfig"),
            "FLUXUP_WORK_DIR": str(self.work / "operator-work"),
            "FLUXUP_ACTIVE_POLL_SECONDS": "0.5",
            "FLUXUP_IDLE_RESYNC_SECONDS": "5",
            "FLUXUP_OPERATOR_USERNAME": OPERATOR_USER,
            "FLUXUP_METRICS_ADDRESS": f"127.0.0.1:{self.metrics_port}",
            **self.operator_env,
        }
        start_component(self.sandbox, "fluxup-operator",
                        [sys.executable, "-m", "fluxup", "operator"], io.StringIO(), env=env)

    def restart_operator(self, env: dict[str, str | None]) -> None:
        """Stop the operator (SIGTERM, clean shutdown) and start it again with ``env``
        merged into :attr:`operator_env` (``None`` removes a setting), e.g. the UI's."""
        for key, value in env.items():
            if value is None:
                self.operator_env.pop(key, None)
            else:
                self.operator_env[key] = value
        pid = self.sandbox.pids.pop("fluxup-operator", None)
        if pid:
            stop_process(pid, self.sandbox.token)
        self.start_operator()

    def kill_operator(self) -> None:
        """SIGKILL the operator: no clean-up at all, as an OOM kill or node loss would do."""
        pid = self.sandbox.pids.get("fluxup-operator")
        if pid and is_ours(pid, self.sandbox.token):
            os.killpg(pid, signal.SIGKILL)
            wait_until("the operator to die", lambda: not group_alive(pid), 10)

    def operator_log_tail(self, chars: int = 4000) -> str:
        return self.operator_log.read_text(errors="replace")[-chars:]

    def webhook_get(self, path: str) -> str:
        import ssl

        context = ssl.create_default_context(cafile=str(self.certs.ca_bundle))
        with urllib.request.urlopen(
            f"https://127.0.0.1:{self.webhook_port}{path}", context=context, timeout=5
        ) as resp:
            return str(resp.read().decode())

    def webhook_requests(self) -> dict[tuple[str, str, str], int]:
        return parse_request_counts(self.webhook_get("/metrics"))

    def stop(self) -> None:
        self.sandbox.kubectl("delete", "-f", "-", "--ignore-not-found", check=False,
                             input=json.dumps({"apiVersion": "v1", "kind": "List",
                                               "items": self.registered}))
        for name in ("fluxup-operator", "fluxup-webhook"):
            pid = self.sandbox.pids.pop(name, None)
            if pid:
                stop_process(pid, self.sandbox.token)
        self.sandbox.save()


def start_stack(sb: Sandbox, work: Path, *, label: str | None = None,
                out: TextIO = sys.stdout, operator_env: Mapping[str, str] | None = None) -> Stack:
    """Install FluxUp's CRDs and RBAC, start the webhook and the operator (with the extra
    ``operator_env`` settings, e.g. the UI's); return them."""
    work.mkdir(parents=True, exist_ok=True)
    crds = sorted((REPO / "crds").glob("fluxup.dev_*.yaml"))
    sb.kubectl("apply", "--server-side", "--field-manager=fluxup-sandbox",
               *[f"--filename={p}" for p in crds])
    sb.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    sb.kubectl("apply", "--server-side", "--field-manager=fluxup-sandbox",
               f"--filename={REPO / 'manifests/base/namespace.yaml'}",
               f"--filename={REPO / 'manifests/operator/rbac.yaml'}",
               f"--filename={REPO / 'manifests/operator/ui-rbac.yaml'}",
               f"--filename={REPO / 'manifests/webhook/core/serviceaccount.yaml'}",
               f"--filename={REPO / 'manifests/webhook/core/rbac.yaml'}")
    _service_account_kubeconfig(sb, "fluxup-operator", work / "operator.kubeconfig")
    webhook_kubeconfig = _service_account_kubeconfig(
        sb, "fluxup-webhook", work / "webhook.kubeconfig")
    files, _ = ensure_cert_files(work / "certs", ["127.0.0.1", "localhost"])
    port = sb.ports.setdefault("fluxup-webhook", free_port())  # stable across re-runs
    start_component(sb, "fluxup-webhook", [
        sys.executable, "-m", "webhook", "--host=127.0.0.1", f"--port={port}",
        f"--cert-file={files.cert}", f"--key-file={files.key}",
        f"--operator-username={OPERATOR_USER}", "--cert-reload-interval=0.5",
        f"--kubeconfig={webhook_kubeconfig}",
    ], out)
    stack = Stack(sb, label, port, work, [], dict(operator_env or {}))
    wait_until("the FluxUp webhook", lambda: _ready(stack), 30,
               sb.logs / "fluxup-webhook.log")
    selector = None
    if label:
        key, value = label.split("=", 1)
        selector = {"matchLabels": {key: value}}
    stack.registered = build_local_configurations(
        _yaml_docs(REPO / "manifests/webhook/core/webhookconfigurations.yaml"),
        f"https://127.0.0.1:{port}", files.ca_bundle.read_bytes(),
        name=f"fluxup-local-{sb.token}" + (f"-{label.split('=', 1)[1]}" if label else ""),
        namespace_selector=selector)
    sb.kubectl("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": stack.registered}))
    stack.start_operator()
    sb.save()
    print(f"  FluxUp webhook on https://127.0.0.1:{port}, operator running as {OPERATOR_USER}",
          file=out, flush=True)
    return stack


def _service_account_kubeconfig(sb: Sandbox, account: str, path: Path) -> Path:
    """A kubeconfig acting as ServiceAccount ``fluxup-system/<account>`` (real token)."""
    token = sb.kubectl("create", "token", account, "-n", "fluxup-system",
                       "--duration=48h").stdout.strip()
    path.write_text(_token_kubeconfig(sb, token))
    path.chmod(0o600)
    return path


def _ready(stack: Stack) -> bool:
    try:
        return stack.webhook_get("/readyz") == "ok"
    except OSError:
        return False


def ui_healthy(url: str) -> bool:
    """True when the operator's web UI at ``url`` answers ``/healthz`` with 200."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False
