"""Maintenance windows: open or closed, per day, across midnight, in a time zone."""

from __future__ import annotations

import datetime as dt

import pytest

from fluxup.api.managedapp import MaintenanceWindow, Weekday
from fluxup.logic.maintenance_window import determine_window

SAT, SUN, MON = Weekday.SAT, Weekday.SUN, Weekday.MON


def at(text: str) -> dt.datetime:
    """A UTC instant, ``2026-03-07 02:30`` (2026-03-07 is a Saturday)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(("window", "now", "is_open"), [
    # no window: any time
    (None, at("2026-03-04 13:00"), True),
    # every day 02:00-05:00 UTC; the end is exclusive
    (MaintenanceWindow("02:00", "05:00"), at("2026-03-04 02:00"), True),
    (MaintenanceWindow("02:00", "05:00"), at("2026-03-04 04:59"), True),
    (MaintenanceWindow("02:00", "05:00"), at("2026-03-04 05:00"), False),
    (MaintenanceWindow("02:00", "05:00"), at("2026-03-04 01:59"), False),
    # weekend only
    (MaintenanceWindow("02:00", "05:00", (SAT, SUN)), at("2026-03-07 03:00"), True),
    (MaintenanceWindow("02:00", "05:00", (SAT, SUN)), at("2026-03-08 03:00"), True),
    (MaintenanceWindow("02:00", "05:00", (SAT, SUN)), at("2026-03-09 03:00"), False),
    # across midnight: belongs to the day it starts on
    (MaintenanceWindow("23:00", "02:00", (SAT,)), at("2026-03-07 23:30"), True),
    (MaintenanceWindow("23:00", "02:00", (SAT,)), at("2026-03-08 01:30"), True),
    (MaintenanceWindow("23:00", "02:00", (SAT,)), at("2026-03-08 02:00"), False),
    (MaintenanceWindow("23:00", "02:00", (SAT,)), at("2026-03-07 01:30"), False),
    (MaintenanceWindow("23:00", "02:00", (SAT,)), at("2026-03-08 23:30"), False),
    (MaintenanceWindow("22:00", "06:00", (SUN, MON)), at("2026-03-10 05:00"), True),
    # wall-clock time of the zone: 02:30 UTC is 03:30 in Berlin (CET, winter) ...
    (MaintenanceWindow("03:00", "04:00", (), "Europe/Berlin"), at("2026-03-04 02:30"), True),
    (MaintenanceWindow("02:00", "03:00", (), "Europe/Berlin"), at("2026-03-04 02:30"), False),
    # ... and 04:30 in summer (CEST)
    (MaintenanceWindow("04:00", "05:00", (), "Europe/Berlin"), at("2026-07-01 02:30"), True),
    # the weekday is the zone's: Saturday 23:30 UTC is Sunday 08:30 in Tokyo
    (MaintenanceWindow("08:00", "09:00", (SUN,), "Asia/Tokyo"), at("2026-03-07 23:30"), True),
    (MaintenanceWindow("08:00", "09:00", (SAT,), "Asia/Tokyo"), at("2026-03-07 23:30"), False),
])
def test_window_open(window: MaintenanceWindow | None, now: dt.datetime,
                     is_open: bool) -> None:
    state = determine_window(window, now)
    assert state.open is is_open
    assert state.problem == ""


def test_description_names_days_times_and_zone() -> None:
    window = MaintenanceWindow("02:00", "05:00", (SAT, SUN), "Europe/Berlin")
    assert determine_window(window, at("2026-03-04 00:00")).description == (
        "Sat, Sun 02:00-05:00 Europe/Berlin")
    assert determine_window(MaintenanceWindow("02:00", "05:00"),
                            at("2026-03-04 00:00")).description == "daily 02:00-05:00 UTC"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe/../../etc/passwd", ""])
def test_unknown_time_zone_is_never_open_and_says_so(zone: str) -> None:
    state = determine_window(MaintenanceWindow("00:00", "23:59", (), zone),
                             at("2026-03-04 12:00"))
    assert state.open is False
    assert "not a time zone this system knows" in state.problem
