"""Which Flux objects can carry an upgrade (the ``flux-healthy`` preflight check)."""

from __future__ import annotations

from typing import Any

import pytest

from fluxup.logic.flux_health import (
    MESSAGE_LIMIT,
    FluxObjectHealth,
    judge_flux_object,
    summarize_flux_health,
)

KS = "Kustomization flux-system/apps"


def _obj(suspend: bool | None = None, **conditions: tuple[str, str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {} if suspend is None else {"suspend": suspend}
    return {"spec": spec, "status": {"conditions": [
        {"type": kind, "status": status, "reason": reason, "message": message}
        for kind, (status, reason, message) in conditions.items()]}}


@pytest.mark.parametrize(("obj", "ok", "detail"), [
    pytest.param(None, False, "not found", id="missing"),
    pytest.param(_obj(Ready=("True", "ReconciliationSucceeded", "Applied revision")), True,
                 "Ready", id="ready"),
    pytest.param(_obj(suspend=True, Ready=("True", "ReconciliationSucceeded", "")), False,
                 "is suspended (Flux applies nothing from it; resume it with flux resume)",
                 id="suspended-even-if-ready"),
    pytest.param(_obj(suspend=False, Ready=("True", "Succeeded", "")), True, "Ready",
                 id="suspend-false"),
    pytest.param(_obj(Ready=("False", "BuildFailed", "kustomize build failed: x")), False,
                 "is not Ready (BuildFailed: kustomize build failed: x)", id="not-ready"),
    pytest.param(_obj(Ready=("False", "", "")), False, "is not Ready (no reason given)",
                 id="not-ready-no-reason"),
    pytest.param(_obj(Ready=("Unknown", "Progressing", "")), True, "is reconciling",
                 id="reconciling"),
    pytest.param(_obj(Stalled=("True", "InvalidURL", "bad url"),
                      Ready=("Unknown", "Progressing", "")), False,
                 "is stalled (InvalidURL: bad url)", id="stalled"),
    pytest.param({"spec": {}}, True, "has no Ready condition yet", id="no-status"),
    pytest.param({"spec": "x", "status": {"conditions": "nope"}}, True,
                 "has no Ready condition yet", id="malformed"),
    pytest.param({"status": {"conditions": [7, {"type": "Ready", "status": "False",
                                                "message": "a\n  b"}]}}, False,
                 "is not Ready (a b)", id="junk-entries-and-whitespace"),
])
def test_judge(obj: dict[str, Any] | None, ok: bool, detail: str) -> None:
    assert judge_flux_object(KS, obj) == FluxObjectHealth(KS, ok, detail)


def test_a_long_flux_message_is_cut() -> None:
    judged = judge_flux_object(KS, _obj(Ready=("False", "FetchFailed", "x" * 5000)))
    assert not judged.ok
    assert len(judged.detail) < MESSAGE_LIMIT + 40
    assert judged.detail.endswith("…)")


def test_summary_names_only_the_unfit_ones() -> None:
    good = FluxObjectHealth("GitRepository flux-system/fleet", True, "Ready")
    bad = FluxObjectHealth(KS, False, "is suspended")
    assert summarize_flux_health((good, bad)) == (False, f"{KS} is suspended")
    assert summarize_flux_health((good,)) == (True, "GitRepository flux-system/fleet Ready")
    assert summarize_flux_health(()) == (True, "no Flux objects to check")
