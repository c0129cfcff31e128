"""Is the app healthy? Its workloads ready with their current spec, then the optional
HTTP check of the ManagedApp.

Shared by the UpgradeRequest and RollbackRequest HealthChecking phases. Reads only.
"""

from __future__ import annotations

import logging

import httpx

from fluxup.adapters.kube import Kube, R, Resource
from fluxup.api.managedapp import ManagedApp
from fluxup.api.meta import WorkloadKind
from fluxup.logic.health import determine_workload_health, public_url

__all__ = ["determine_unhealthy", "workload_resource"]

log = logging.getLogger(__name__)


def workload_resource(kind: WorkloadKind) -> Resource:
    return R.STATEFULSET if kind is WorkloadKind.STATEFUL_SET else R.DEPLOYMENT


async def determine_unhealthy(kube: Kube, app: ManagedApp) -> str | None:
    """Why the app is not healthy yet (None: every workload ready, HTTP check passed)."""
    waiting = []
    for wl in app.status.workloads:
        obj = await kube.find(workload_resource(wl.kind), wl.namespace, wl.name)
        if obj is None:
            continue
        health = determine_workload_health(obj, stateful=wl.kind is WorkloadKind.STATEFUL_SET)
        if not health.ready:
            waiting.append(f"{wl.kind}/{wl.name} {health.ready_replicas}/{health.wanted}")
    if waiting:
        return "waiting for workloads: " + ", ".join(waiting)
    check = app.spec.health_check.http
    if check is not None:
        shown = public_url(check.url)  # status never shows credentials or raw errors
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                resp = await client.get(check.url)
        except httpx.TimeoutException:
            return f"HTTP check {shown}: no answer within 5s"
        except httpx.HTTPError as exc:
            log.info("HTTP check of %s/%s failed: %s", app.metadata.namespace,
                     app.metadata.name, type(exc).__name__)
            return f"HTTP check {shown}: could not connect"
        if resp.status_code != check.expected_status:
            return f"HTTP check {shown} answered {resp.status_code}, want {check.expected_status}"
    return None
