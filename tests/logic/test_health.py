"""Workload readiness arithmetic of the HealthChecking phase."""

from __future__ import annotations

from typing import Any

import pytest

from fluxup.logic.health import WorkloadHealth, determine_workload_health, public_url


def wl(replicas: int | None, ready: int, updated: int | None, observed: int = 3) -> dict[str, Any]:
    spec = {} if replicas is None else {"replicas": replicas}
    status: dict[str, Any] = {"observedGeneration": observed, "readyReplicas": ready}
    if updated is not None:
        status["updatedReplicas"] = updated
    return {"metadata": {"generation": 3}, "spec": spec, "status": status}


@pytest.mark.parametrize(("obj", "stateful", "expected"), [
    (wl(2, 2, 2), False, WorkloadHealth(True, 2, 2)),
    (wl(2, 1, 2), False, WorkloadHealth(False, 1, 2)),
    (wl(2, 2, 1), False, WorkloadHealth(False, 2, 2)),
    (wl(2, 2, None), False, WorkloadHealth(False, 2, 2)),  # no pod runs the new spec yet
    (wl(2, 2, None), True, WorkloadHealth(True, 2, 2)),  # StatefulSet omits a zero count
    (wl(None, 1, 1), False, WorkloadHealth(True, 1, 1)),  # replicas defaults to 1
    (wl(0, 0, None), False, WorkloadHealth(True, 0, 0)),
    (wl(2, 2, 2, observed=2), False, WorkloadHealth(False, 2, 2)),  # old generation
    (wl(3, 4, 4), False, WorkloadHealth(True, 4, 3)),  # surge
])
def test_workload_health(obj: dict[str, Any], stateful: bool, expected: WorkloadHealth) -> None:
    assert determine_workload_health(obj, stateful) == expected


@pytest.mark.parametrize(("url", "shown"), [
    ("http://web.apps:8080/healthz", "http://web.apps:8080/healthz"),
    ("https://user:s3cret@web.example/health?token=abc#x", "https://web.example/health"),
    ("http://[::1]:9/h", "http://[::1]:9/h"),
    ("http://web:notaport/h", "(unparsable URL)"),
])
def test_public_url_hides_credentials(url: str, shown: str) -> None:
    assert public_url(url) == shown
