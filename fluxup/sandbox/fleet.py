"""The seeded GitOps fleet of the full sandbox, as the demo and the e2e tests use it.

Each test adds its own app (own namespace) with :meth:`Fleet.add_app`, pushes commits with
:meth:`Fleet.commit` and asks Flux to reconcile now instead of waiting for intervals.
:meth:`Fleet.publish` releases a new ``demo-app`` version (chart in the Helm repository
and the OCI registry, image tag in the registry), as an upstream project would, and
:meth:`Fleet.withdraw` takes it back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fluxup.sandbox import seed
from fluxup.sandbox.charts import publish_chart, unpublish_chart
from fluxup.sandbox.cluster import fleet_url, git_credentials
from fluxup.sandbox.controlplane import Sandbox
from fluxup.sandbox.gitserver import GitCredentials
from fluxup.sandbox.processes import wait_until
from fluxup.sandbox.registry import (
    DEMO_CHART_REPO,
    DEMO_IMAGE_REPO,
    delete_tag,
    push_chart,
    push_image,
)


@dataclass
class Fleet:
    sandbox: Sandbox
    repo_url: str
    credentials: GitCredentials
    registry_host: str

    @classmethod
    def of(cls, sb: Sandbox) -> Fleet:
        return cls(sb, fleet_url(sb), git_credentials(sb), f"127.0.0.1:{sb.ports['registry']}")

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.sandbox.get_json(kind, name, "-n", namespace)

    def request_reconcile(self, kind: str, namespace: str, name: str) -> None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.sandbox.kubectl(
            "annotate",
            "--overwrite",
            kind,
            name,
            "-n",
            namespace,
            f"reconcile.fluxcd.io/requestedAt={now}",
            check=False,
        )

    def sync(self, app: str | None = None) -> None:
        """Ask Flux to fetch Git and apply now (root and, if given, the app's Kustomization)."""
        self.request_reconcile("gitrepository", "flux-system", "flux-system")
        self.request_reconcile("kustomization", "flux-system", "flux-system")
        if app:
            self.request_reconcile("kustomization", "flux-system", f"app-{app}")

    def add_app(self, app: seed.DemoApp) -> str:
        head = seed.add_app(self.repo_url, self.credentials, app, self.registry_host)
        self.sync(app.name)
        return head

    def commit(self, files: Mapping[str, str | None], message: str) -> str:
        return seed.commit_files(self.repo_url, self.credentials, files, message)

    @property
    def chart_repo_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox.ports['charts']}"

    @property
    def registry_url(self) -> str:
        return f"http://{self.registry_host}"

    def publish(self, version: str, *, chart: bool = True, image: bool = True) -> None:
        """Release ``demo-app`` ``version``: the chart in the Helm repository and in the OCI
        registry (``charts/demo-app``), and/or the image tag (``images/demo-app``)."""
        if chart:
            package = publish_chart(self.sandbox.dir / "charts", self.chart_repo_url, version)
            push_chart(self.registry_url, DEMO_CHART_REPO, package.path, version)
            # Flux reads the index again now, not at the HelmRepository's next interval
            self.request_reconcile("helmrepository", seed.FLUX_NAMESPACE, "demo-charts")
        if image:
            push_image(self.registry_url, DEMO_IMAGE_REPO, version)

    def withdraw(self, version: str, *, chart: bool = True, image: bool = True) -> None:
        """Take back what :meth:`publish` released for ``version``."""
        if chart:
            unpublish_chart(self.sandbox.dir / "charts", self.chart_repo_url, version)
            delete_tag(self.registry_url, DEMO_CHART_REPO, version)
        if image:
            delete_tag(self.registry_url, DEMO_IMAGE_REPO, version)

    def log(self, limit: int = 50) -> list[str]:
        return seed.log_messages(self.repo_url, self.credentials, limit=limit)

    def refs(self) -> dict[str, str]:
        """Every branch and tag of the fleet repository with its SHA."""
        return seed.list_refs(self.repo_url, self.credentials)

    def read(self, path: str) -> str:
        return seed.read_file(self.repo_url, self.credentials, path)

    def helm_release_ready(self, namespace: str, name: str, version: str) -> dict[str, Any] | None:
        """The HelmRelease once helm-controller reports Ready for ``version`` (else None)."""
        hr = self.get("helmrelease", namespace, name)
        if not hr:
            return None
        status = hr.get("status") or {}
        ready = any(
            c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
        )
        history = status.get("history") or [{}]
        current = status.get("observedGeneration") == hr["metadata"]["generation"]
        running = str(history[0].get("chartVersion", "")).split("+", 1)[0]  # OCI: version+digest
        return hr if ready and current and running == version else None

    def wait_released(
        self, app: seed.DemoApp, version: str, timeout: float = 240
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            self.sync(app.name)
            return self.helm_release_ready(app.namespace, app.name, version)

        return wait_until(
            f"HelmRelease {app.namespace}/{app.name} Ready at {version}", probe, timeout,
            interval=2,
        )
