"""Which notices go out, their words, and their Flux event form."""

from __future__ import annotations

import datetime as dt

import pytest

from fluxup.logic.notices import (
    Notice,
    NoticeKind,
    NoticePrefs,
    Subject,
    build_flux_event,
    build_text,
    describe_identity,
    is_wanted,
    level_of,
    severity_of,
)

K = NoticeKind
SUBJECT = Subject("HelmRelease", "apps", "redis")


@pytest.mark.parametrize(
    ("kind", "prefs", "wanted"),
    [
        (K.UPDATE_AVAILABLE, NoticePrefs(), True),
        (K.UPDATE_AVAILABLE, NoticePrefs(on_available=False), False),
        (K.UPGRADE_STARTED, NoticePrefs(on_upgrade=False), False),
        (K.UPGRADE_SUCCEEDED, NoticePrefs(on_upgrade=False), False),
        (K.UPGRADE_SUCCEEDED, NoticePrefs(on_failure=False, on_available=False), True),
        (K.ROLLBACK_SUCCEEDED, NoticePrefs(on_upgrade=False), False),
        (K.UPGRADE_FAILED, NoticePrefs(on_upgrade=False, on_available=False), True),
        (K.UPGRADE_FAILED, NoticePrefs(on_failure=False), False),
        (K.ROLLBACK_FAILED, NoticePrefs(on_failure=False), False),
        (K.RELEASE_HELD, NoticePrefs(False, False, False), True),
        (K.GATE_BYPASSED, NoticePrefs(False, False, False), True),
    ],
)
def test_preferences(kind: NoticeKind, prefs: NoticePrefs, wanted: bool) -> None:
    assert is_wanted(Notice(kind, "apps/redis", SUBJECT, prefs=prefs)) is wanted


def test_severity_and_level() -> None:
    assert severity_of(K.UPGRADE_FAILED) == severity_of(K.GATE_BYPASSED) == "error"
    assert severity_of(K.UPGRADE_SUCCEEDED) == "info"
    assert level_of(K.ROLLBACK_FAILED) == "failure"
    assert level_of(K.ROLLBACK_SUCCEEDED) == "success"
    assert level_of(K.RELEASE_HELD) == "warning"
    assert level_of(K.UPDATE_AVAILABLE) == "info"


def test_text_of_a_completed_upgrade() -> None:
    title, body = build_text(Notice(
        K.UPGRADE_SUCCEEDED, "apps/redis", SUBJECT, "12.4.0", "12.5.0", "apps/up-1",
        origin="ui", duration_seconds=125.4, snapshots=("up-1-data",)), "https://ui/")
    assert title == "Upgraded apps/redis to 12.5.0"
    assert body.splitlines() == [
        "HelmRelease apps/redis: 12.4.0 → 12.5.0", "Request: apps/up-1", "Triggered by: ui",
        "Duration: 2m05s", "Snapshots: up-1-data", "https://ui/apps/apps/redis"]


def test_update_available_links_to_the_upgrade_page() -> None:
    _, body = build_text(Notice(K.UPDATE_AVAILABLE, "apps/redis", SUBJECT, to_version="2"),
                         "https://ui")
    assert body.endswith("https://ui/apps/apps/redis/upgrade")


def test_flux_event_shape() -> None:
    event = build_flux_event(
        Notice(K.RELEASE_HELD, "apps/redis",
               Subject("OCIRepository", "apps", "chart", "source.toolkit.fluxcd.io/v1", "u"),
               to_version="1.2.3", request="apps/r"),
        dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=dt.UTC), "pod-1")
    assert event == {
        "involvedObject": {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
                           "name": "chart", "namespace": "apps", "uid": "u"},
        "severity": "info",
        "timestamp": "2026-05-06T07:08:09Z",
        "message": event["message"],
        "reason": "ReleaseHeld",
        "metadata": {"source.toolkit.fluxcd.io/fluxup.app": "apps/redis", "revision": "1.2.3",
                     "source.toolkit.fluxcd.io/fluxup.version": "1.2.3",
                     "source.toolkit.fluxcd.io/fluxup.request": "apps/r"},
        "reportingController": "fluxup-operator",
        "reportingInstance": "pod-1",
    }
    assert event["message"].startswith("FluxUp holds apps/redis at the gate (1.2.3)\n")


def test_describe_identity() -> None:
    assert describe_identity("1.0", [("image.tag", "2")]) == "1.0 (image.tag=2)"
    assert describe_identity(None, [("image.tag", "2")]) == "image.tag=2"
    assert describe_identity(None) is None
