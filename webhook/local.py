"""Run the webhook as a local process and point an API server at it by URL.

For the sandbox: integration tests, benchmarks and the demo start ``python -m webhook``
on 127.0.0.1 with certificates from :mod:`certs.files`, and register webhook
configurations built from FluxUp's own manifests with ``clientConfig.url`` and the CA
bundle instead of a Service (:func:`build_local_configurations`). Not used in a cluster.
"""

from __future__ import annotations

import base64
import copy
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from cryptography import x509

from certs.files import CertFiles, ensure_cert_files

__all__ = ["LocalWebhook", "build_local_configurations", "parse_request_counts"]

_METRIC = re.compile(
    r'^fluxup_webhook_requests_total\{path="([^"]*)",kind="([^"]*)",decision="([^"]*)"\} (\d+)$'
)


def parse_request_counts(metrics: str) -> dict[tuple[str, str, str], int]:
    """``(path, kind, decision) -> count`` from the ``/metrics`` text."""
    counts: dict[tuple[str, str, str], int] = {}
    for line in metrics.splitlines():
        match = _METRIC.match(line)
        if match:
            counts[(match[1], match[2], match[3])] = int(match[4])
    return counts


def build_local_configurations(
    configurations: Iterable[Mapping[str, Any]],
    base_url: str,
    ca_bundle: bytes,
    *,
    name: str,
    namespace_selector: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Copies of Mutating/ValidatingWebhookConfigurations calling ``base_url`` directly.

    Each webhook's ``clientConfig.service`` becomes ``url: <base_url><path>`` with the
    CA bundle; the configurations are renamed ``name``; an optional namespaceSelector
    confines them (e.g. to test namespaces). Everything else is kept as written.
    """
    out: list[dict[str, Any]] = []
    for config in configurations:
        doc = copy.deepcopy(dict(config))
        doc["metadata"] = {"name": name, "labels": dict(doc.get("metadata", {}).get("labels", {}))}
        for webhook in doc.get("webhooks", []):
            service = webhook["clientConfig"].pop("service", {})
            webhook["clientConfig"] = {
                "url": base_url.rstrip("/") + service.get("path", "/"),
                "caBundle": base64.b64encode(ca_bundle).decode(),
            }
            if namespace_selector is not None:
                webhook["namespaceSelector"] = _merge_selectors(
                    webhook.get("namespaceSelector"), namespace_selector
                )
        out.append(doc)
    return out


def _merge_selectors(
    own: Mapping[str, Any] | None, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """Both label selectors at once (their requirements ANDed)."""
    merged: dict[str, Any] = copy.deepcopy(dict(own or {}))
    for key in ("matchLabels", "matchExpressions"):
        if key not in extra:
            continue
        if key == "matchLabels":
            merged.setdefault(key, {}).update(extra[key])
        else:
            merged.setdefault(key, []).extend(copy.deepcopy(list(extra[key])))
    return merged


@dataclass
class LocalWebhook:
    """One ``python -m webhook`` process on 127.0.0.1:``port`` (HTTPS)."""

    cert_dir: Path
    port: int
    operator_username: str
    log_file: Path
    reload_interval: float = 0.2
    #: credentials for line 2's ManagedApp lookup (none: line 2 denies managed records)
    kubeconfig: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: TextIO | None = field(default=None, repr=False)

    @property
    def files(self) -> CertFiles:
        return CertFiles(self.cert_dir)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start (certificates are created on first use) and wait until ready."""
        ensure_cert_files(self.cert_dir, ["127.0.0.1", "localhost"])
        self._log = self.log_file.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "webhook", "--host=127.0.0.1", f"--port={self.port}",
             f"--cert-file={self.files.cert}", f"--key-file={self.files.key}",
             f"--operator-username={self.operator_username}",
             f"--cert-reload-interval={self.reload_interval}",
             *([f"--kubeconfig={self.kubeconfig}"] if self.kubeconfig else [])],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"webhook exited with {self.process.returncode}; see "
                                   f"{self.log_file}")
            try:
                if self.get("/readyz") == "ok":
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"webhook not ready after {timeout}s; see {self.log_file}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def get(self, path: str, timeout: float = 5.0) -> str:
        context = ssl.create_default_context(cafile=str(self.files.ca_bundle))
        url = self.url + path  # always https://127.0.0.1
        with urllib.request.urlopen(url, context=context, timeout=timeout) as resp:  # noqa: S310
            body: bytes = resp.read()
        return body.decode()

    def request_counts(self) -> dict[tuple[str, str, str], int]:
        return parse_request_counts(self.get("/metrics"))

    def served_serial(self) -> int:
        """Serial number of the certificate a new connection is served."""
        context = ssl.create_default_context(cafile=str(self.files.ca_bundle))
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock, \
                context.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
        if der is None:
            raise ssl.SSLError("the webhook sent no certificate")
        return int(x509.load_der_x509_certificate(der).serial_number)
