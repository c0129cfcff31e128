"""Is a workload rolled out and ready? The arithmetic of the HealthChecking phase.

:func:`determine_workload_health` reads a Deployment or StatefulSet object: the
controller has observed its current generation, and at least ``spec.replicas``
(default 1) pods are ready and updated to the new spec. :func:`public_url` is the form
of the HTTP check's URL that may appear in status (no credentials, no query). Called by
:mod:`fluxup.reconcile.health`. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["WorkloadHealth", "determine_workload_health", "public_url"]


@dataclass(frozen=True)
class WorkloadHealth:
    ready: bool
    ready_replicas: int
    wanted: int


def determine_workload_health(obj: Mapping[str, Any], stateful: bool) -> WorkloadHealth:
    """Readiness of one workload object (``stateful``: a StatefulSet, whose controller
    may omit ``updatedReplicas`` once every pod runs the current revision)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    wanted = 1 if spec.get("replicas") is None else int(spec["replicas"])
    ready = int(status.get("readyReplicas") or 0)
    updated = status.get("updatedReplicas")
    updated_count = int(updated) if updated is not None else (wanted if stateful else 0)
    observed = status.get("observedGeneration") == (obj.get("metadata") or {}).get("generation")
    return WorkloadHealth(
        ready=observed and ready >= wanted and updated_count >= wanted,
        ready_replicas=ready,
        wanted=wanted,
    )


def public_url(url: str) -> str:
    """``url`` without userinfo, query or fragment (either can carry a secret)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(unparsable URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
