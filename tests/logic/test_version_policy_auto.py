"""autoUpdate's target re-derived from the status, and what the condition says about the
maintenance window (fluxup.logic.version_policy)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from fluxup.api.managedapp import ManagedApp
from fluxup.logic.renovate_map import build_app_target, findings_for, map_report
from fluxup.logic.renovate_report import Dep, RepositoryReport, Update
from fluxup.logic.version_policy import ScanOutcome, decide_updates, determine_auto_target

FILE = "apps/demo/hr.yaml"
SATURDAY_3AM = dt.datetime(2026, 3, 7, 3, 0, tzinfo=dt.UTC)
WEDNESDAY_NOON = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC)
WEEKEND = {"days": ["Sat", "Sun"], "start": "02:00", "end": "05:00"}


def _app(current: str, candidates: list[tuple[str, str]], *, level: str = "patch",
         constraint: str | None = None, window: dict[str, Any] | None = None) -> ManagedApp:
    policy: dict[str, Any] = {"chart": {"autoUpdate": level,
                                        **({"constraint": constraint} if constraint else {})}}
    if window:
        policy["maintenanceWindow"] = window
    return ManagedApp.from_dict({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
        "metadata": {"name": "demo", "namespace": "apps"},
        "spec": {"helmReleaseRef": {"name": "demo"}, "versionPolicy": policy},
        "status": {
            "git": {"repositoryUrl": "http://git/fleet.git", "file": FILE},
            "helmRelease": {"apiVersion": "helm.toolkit.fluxcd.io/v2", "name": "demo",
                            "namespace": "apps", "chartName": "demo"},
            "currentVersion": current,
            "availableUpdates": [{"source": "chart", "name": "demo", "version": v, "type": t}
                                 for v, t in candidates],
        },
    })


@pytest.mark.parametrize(("current", "candidates", "level", "constraint", "expected"), [
    ("1.0.0", [("1.0.1", "patch"), ("1.0.2", "patch"), ("1.1.0", "minor")], "patch", None,
     "1.0.2"),
    ("1.0.0", [("1.0.1", "patch"), ("1.1.0", "minor")], "minor", None, "1.1.0"),
    ("1.0.0", [("1.1.0", "minor")], "patch", None, None),
    ("1.0.0", [("1.0.1", "patch")], "none", None, None),
    ("1.0.0", [("1.0.1", "patch"), ("1.0.2", "patch")], "patch", "<1.0.2", "1.0.1"),
    ("1.0.0", [("1.0.1", "patch")], "patch", "not a range", None),
    # the app already runs it (a person upgraded meanwhile): not a target
    ("1.0.1", [("1.0.1", "patch")], "patch", None, None),
    ("1.0.2", [("1.0.1", "patch")], "patch", None, None),
    ("1.0.0", [], "major", None, None),
])
def test_determine_auto_target(current: str, candidates: list[tuple[str, str]], level: str,
                               constraint: str | None, expected: str | None) -> None:
    target = determine_auto_target(_app(current, candidates, level=level,
                                        constraint=constraint))
    assert (target.version if target else None) == expected


def _decide(app: ManagedApp, now: dt.datetime) -> Any:
    target = build_app_target(app)
    assert target is not None
    dep = Dep("flux", FILE, "demo", "demo", "helm", "1.0.0", "1.0.0",
              updates=(Update("1.0.1", "1.0.1", "patch"), Update("1.1.0", "1.1.0", "minor")))
    findings = findings_for(map_report(RepositoryReport("local", (dep,)), [target]), target)
    return decide_updates(app, findings, ScanOutcome(True), now)


def test_scan_and_status_agree_on_the_target() -> None:
    app = _app("1.0.0", [])
    decision = _decide(app, WEDNESDAY_NOON)
    assert decision.auto_target is not None
    after = _app("1.0.0", [(c.version, c.type.value) for c in decision.candidates])
    assert determine_auto_target(after) == decision.auto_target


@pytest.mark.parametrize(("window", "level", "says"), [
    (None, "patch", None),
    (WEEKEND, "none", None),  # nothing starts on its own: nothing to wait for
    (WEEKEND, "patch", "autoUpdate starts it in the maintenance window "
                       "(Sat, Sun 02:00-05:00 UTC)"),
    ({**WEEKEND, "timeZone": "Nowhere/Atlantis"}, "patch",
     "'Nowhere/Atlantis' is not a time zone this system knows"),
])
def test_available_condition_says_when_auto_update_waits(
        window: dict[str, Any] | None, level: str, says: str | None) -> None:
    decision = _decide(_app("1.0.0", [], level=level, window=window), WEDNESDAY_NOON)
    message = decision.conditions[-1].message
    assert message.startswith("chart demo 1.1.0 (minor) available")
    if says is None:
        assert ";" not in message
    else:
        assert says in message
    # the target itself does not depend on the window: starting is auto_update's call
    assert (decision.auto_target is not None) is (level != "none")
