"""FluxUp itself running against the sandbox: webhook + operator, as a user would run them.

The webhook is its own HTTPS process registered with FluxUp's own webhook manifests (by
URL, confined to namespaces labelled with this stack's token). The operator runs as the
``fluxup-operator`` ServiceAccount with exactly the ClusterRole in ``manifests/operator``
(a real token from the TokenRequest API), so every test also proves that RBAC suffices.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.processes import free_port
from webhook.local import LocalWebhook, build_local_configurations

REPO = Path(__file__).resolve().parent.parent
OPERATOR_USER = "system:serviceaccount:fluxup-system:fluxup-operator"


def _token_kubeconfig(sb: Sandbox, token: str) -> str:
    config = yaml.safe_load(sb.kubeconfig.read_text())
    config["users"] = [{"name": "fluxup-operator", "user": {"token": token}}]
    for ctx in config["contexts"]:
        ctx["context"]["user"] = "fluxup-operator"
    return yaml.safe_dump(config)


@dataclass
class OperatorProcess:
    """``python -m fluxup operator`` under the shipped RBAC; restartable and killable."""

    kubeconfig: Path
    work_dir: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        env = dict(os.environ)
        env.update(FLUXUP_KUBECONFIG=str(self.kubeconfig), KUBECONFIG=str(self.kubeconfig),
                   FLUXUP_WORK_DIR=str(self.work_dir), FLUXUP_ACTIVE_POLL_SECONDS="0.5",
                   FLUXUP_IDLE_RESYNC_SECONDS="5", FLUXUP_OPERATOR_USERNAME=OPERATOR_USER,
                   NO_PROXY="127.0.0.1,localhost")
        log = open(self.log_file, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fluxup", "operator"], env=env, stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a node failure or OOM kill would do."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:]


@dataclass
class Stack:
    sandbox: Sandbox
    token: str
    webhook: LocalWebhook
    operator: OperatorProcess
    registered: list[dict[str, Any]]

    def enrol(self, namespace: str) -> None:
        """Put ``namespace`` under this stack's webhook configurations."""
        # own field manager: Flux strips labels that plain kubectl edits added
        self.sandbox.kubectl("label", "--overwrite", "--field-manager=fluxup-e2e", "namespace",
                             namespace,
                             f"fluxup.dev/e2e={self.token}")


def start_stack(sb: Sandbox, work: Path) -> Stack:
    token = secrets.token_hex(3)
    sb.kubectl("apply", "--server-side", "-f", str(REPO / "manifests/base/namespace.yaml"))
    sb.kubectl("apply", "--server-side", "-f", str(REPO / "manifests/operator/rbac.yaml"))
    sa_token = sb.kubectl("create", "token", "fluxup-operator", "-n", "fluxup-system",
                          "--duration=48h").stdout.strip()
    kubeconfig = work / "operator.kubeconfig"
    kubeconfig.write_text(_token_kubeconfig(sb, sa_token))
    kubeconfig.chmod(0o600)
    webhook = LocalWebhook(work / "certs", free_port(), OPERATOR_USER, work / "webhook.log")
    webhook.start()
    manifest = REPO / "manifests/webhook/core/webhookconfigurations.yaml"
    configs = build_local_configurations(
        list(yaml.safe_load_all(manifest.read_text())), webhook.url,
        webhook.files.ca_bundle.read_bytes(), name=f"fluxup-e2e-{token}",
        namespace_selector={"matchLabels": {"fluxup.dev/e2e": token}})
    sb.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                     "items": configs}))
    operator = OperatorProcess(kubeconfig, work / "operator-work", work / "operator.log")
    operator.start()
    return Stack(sb, token, webhook, operator, configs)


def stop_stack(stack: Stack) -> None:
    stack.operator.stop()
    stack.sandbox.kubectl("delete", "-f", "-", "--ignore-not-found", check=False,
                          input=json.dumps({"apiVersion": "v1", "kind": "List",
                                            "items": stack.registered}))
    stack.webhook.stop()
