"""The ManagedApp summary: Ready from the required conditions, every problem named."""

from __future__ import annotations

import datetime as dt

import pytest

from fluxup.api.conditions import Condition, ConditionStatus, Reason
from fluxup.logic.managedapp_status import (
    Observation,
    merge_scan_conditions,
    summarize_managedapp,
)

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=1)
OK = [("Discovered", True, "Succeeded", "found"), ("Gated", True, "ExactVersion", "gated"),
      ("SnapshotCapable", True, "Succeeded", "2 PVCs")]


def seen(rows: list[tuple[str, bool, str, str]], version: str | None = "1.0.0") -> Observation:
    obs = Observation()
    for row in rows:
        obs.condition(*row)
    if version:
        obs.status["currentVersion"] = version
    return obs


def ready(conditions: tuple[Condition, ...]) -> tuple[ConditionStatus, str, str]:
    found = next(c for c in conditions if c.type == "Ready")
    return found.status, found.reason, found.message


@pytest.mark.parametrize(("rows", "snapshots", "expected"), [
    (OK, True, (ConditionStatus.TRUE, Reason.SUCCEEDED, "managing web at 1.0.0")),
    (OK[:2], False, (ConditionStatus.TRUE, Reason.SUCCEEDED, "managing web at 1.0.0")),
    (OK[:2], True, (ConditionStatus.FALSE, Reason.FAILED, "SnapshotCapable unknown")),
    ([OK[0], ("Gated", False, "ReleaseNotRecorded", "not recorded"), OK[2]], True,
     (ConditionStatus.FALSE, Reason.FAILED, "not recorded")),
    ([("Discovered", False, "KustomizationNotFound", "no ks"), OK[1],
      ("SnapshotCapable", False, "PVCNotFound", "no pvcs")], True,
     (ConditionStatus.FALSE, Reason.FAILED, "no ks; no pvcs")),
    ([], False, (ConditionStatus.FALSE, Reason.FAILED, "Discovered unknown; Gated unknown")),
    ([*OK, ("Held", True, "Held", "holding 1.1.0")], True,
     (ConditionStatus.TRUE, Reason.SUCCEEDED, "managing web at 1.0.0")),  # a hold is normal
])
def test_ready_summarizes_the_required_conditions(
    rows: list[tuple[str, bool, str, str]], snapshots: bool,
    expected: tuple[ConditionStatus, str, str],
) -> None:
    conditions = summarize_managedapp((), seen(rows), snapshots, "web", 3, T0)
    assert ready(conditions) == expected
    assert all(c.observed_generation == 3 for c in conditions)


def test_unknown_version_and_stable_transition_times() -> None:
    first = summarize_managedapp((), seen(OK, version=None), True, "web", 1, T0)
    assert ready(first)[2] == "managing web at unknown version"
    again = summarize_managedapp(first, seen(OK, version=None), True, "web", 2, T1)
    assert {c.last_transition_time for c in again} == {T0}  # nothing changed
    moved = summarize_managedapp(again, seen(OK), True, "web", 2, T1)
    times = {c.type: c.last_transition_time for c in moved}
    assert times["Ready"] == T1
    assert times["Discovered"] == T0


def _c(type_: str, message: str) -> dict[str, str]:
    return {"type": type_, "status": "True", "message": message}


@pytest.mark.parametrize(("ours", "current", "expected"), [
    # the scan wrote after the pass read: its version replaces the stale one in place
    ([_c("Ready", "r"), _c("UpdatesChecked", "old"), _c("Gated", "g")],
     [_c("UpdatesChecked", "new"), _c("Ready", "other")],
     [_c("Ready", "r"), _c("UpdatesChecked", "new"), _c("Gated", "g")]),
    # the scan wrote its first conditions meanwhile: appended
    ([_c("Ready", "r")], [_c("UpdateAvailable", "1.1.0"), _c("UpdatesChecked", "ok")],
     [_c("Ready", "r"), _c("UpdateAvailable", "1.1.0"), _c("UpdatesChecked", "ok")]),
    # the object has none (never scanned): nothing of the scan's is invented
    ([_c("Ready", "r"), _c("UpdateAvailable", "stale")], [], [_c("Ready", "r")]),
])
def test_merge_scan_conditions_takes_the_scans_from_the_object(
    ours: list[dict[str, str]], current: list[dict[str, str]], expected: list[dict[str, str]]
) -> None:
    assert merge_scan_conditions(ours, current) == expected
