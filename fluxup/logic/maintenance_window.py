"""When a ManagedApp's ``versionPolicy.maintenanceWindow`` lets ``autoUpdate`` start.

Called by :mod:`fluxup.reconcile.auto_update` before it creates an automatic
UpgradeRequest, and by :mod:`fluxup.logic.version_policy` to say in the
``UpdateAvailable`` condition when an automatic upgrade waits. A window is a start and an
end time of day (``HH:MM``, wall-clock time in its IANA ``timeZone``, default ``UTC``) on
the listed ``days`` (every day when none are listed). An end at or before the start
crosses midnight: the window belongs to the day it starts on (``Sat 23:00-02:00`` is
open on Saturday night until 02:00 on Sunday). Without a window ``autoUpdate`` may start
at any time; with a time zone this system does not know, never (and the condition says
so). Requests a person creates are never held back by the window. Pure; no I/O.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from fluxup.api.managedapp import MaintenanceWindow, Weekday

__all__ = ["WindowState", "determine_window"]

_DAYS = tuple(Weekday)  # Monday first, as datetime.weekday()


@dataclass(frozen=True)
class WindowState:
    """Whether automatic upgrades may start now; ``problem`` when the window is unusable."""

    open: bool
    description: str = ""
    problem: str = ""


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _zone(name: str) -> dt.tzinfo:
    if name == "UTC":
        return dt.UTC
    return zoneinfo.ZoneInfo(name)


def _describe(window: MaintenanceWindow) -> str:
    days = ", ".join(d.value for d in window.days) if window.days else "daily"
    return f"{days} {window.start}-{window.end} {window.time_zone}"


def determine_window(window: MaintenanceWindow | None, now: dt.datetime) -> WindowState:
    """Is ``window`` open at ``now`` (an aware datetime)?"""
    if window is None:
        return WindowState(True)
    description = _describe(window)
    try:
        zone = _zone(window.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return WindowState(False, description,
                           f"versionPolicy.maintenanceWindow.timeZone {window.time_zone!r} is "
                           "not a time zone this system knows (an IANA name such as "
                           "Europe/Berlin)")
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    start, end = _minutes(window.start), _minutes(window.end)
    days = set(window.days) or set(_DAYS)
    today = _DAYS[local.weekday()]
    yesterday = _DAYS[(local.weekday() - 1) % 7]
    if start < end:
        is_open = today in days and start <= minute < end
    else:  # crosses midnight: from start today, or until end after yesterday's start
        is_open = (today in days and minute >= start) or (yesterday in days and minute < end)
    return WindowState(is_open, description)
