"""The inbox view models: states, update grouping, holds, activity, values diff."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from fluxup.api.managedapp import ManagedApp, UpdateType
from fluxup.api.meta import Identity, ImageTag
from fluxup.api.rollbackrequest import RollbackRequest
from fluxup.api.upgraderequest import UpgradeRequest
from fluxup.errors import ConfigError
from fluxup.logic.inbox import (
    AppState,
    InboxQuery,
    UpdateGroup,
    ValueChange,
    build_activity,
    build_app_row,
    build_inbox,
    build_values_diff,
    describe_age,
    determine_app_state,
    filter_inbox,
    group_updates,
    parse_inbox_query,
)

T0 = "2026-03-01T10:00:00Z"


def app(name: str = "web", ns: str = "apps", **status: Any) -> ManagedApp:
    spec: dict[str, Any] = {"helmReleaseRef": {"name": name}}
    if status.pop("suspend", False):
        spec["suspend"] = True
    return ManagedApp.from_dict({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "ManagedApp",
        "metadata": {"name": name, "namespace": ns}, "spec": spec, "status": status})


def cond(type_: str, status: str = "True", reason: str = "R", message: str = "m") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": T0}


CHART_CAND = {"source": "chart", "name": "web", "version": "1.1.0", "type": "minor",
              "currentVersion": "1.0.0"}
IMAGE_CAND = {"source": "image", "name": "ghcr.io/x/web", "version": "2.0.0", "type": "major",
              "valuesPath": "image.tag", "currentVersion": "1.9.0"}


@pytest.mark.parametrize(("status", "state"), [
    ({"activeRequest": {"kind": "UpgradeRequest", "name": "u"}, "currentVersion": "1"},
     AppState.UPGRADING),
    ({"activeRequest": {"kind": "RollbackRequest", "name": "r"}}, AppState.ROLLING_BACK),
    ({"conditions": [cond("Held")], "currentVersion": "1"}, AppState.HELD),
    ({"conditions": [cond("Held", "False")], "currentVersion": "1"}, AppState.UP_TO_DATE),
    ({"suspend": True, "currentVersion": "1"}, AppState.SUSPENDED),
    ({"lastUpgrade": {"upgradeRequest": "u", "phase": "Failed"}, "currentVersion": "1"},
     AppState.FAILED),
    ({"availableUpdate": {"version": "1.1.0", "type": "minor"}, "currentVersion": "1"},
     AppState.UPDATE_AVAILABLE),
    ({"availableUpdate": {"images": [{"valuesPath": "image.tag", "tag": "2"}]},
      "currentVersion": "1"}, AppState.UPDATE_AVAILABLE),
    ({"currentVersion": "1.0.0"}, AppState.UP_TO_DATE),
    ({}, AppState.UNKNOWN),
])
def test_app_state(status: dict[str, Any], state: AppState) -> None:
    assert determine_app_state(app(**status)) is state


def test_in_flight_wins_over_hold() -> None:
    a = app(activeRequest={"kind": "UpgradeRequest", "name": "u"}, conditions=[cond("Held")])
    assert determine_app_state(a) is AppState.UPGRADING


def test_hold_names_line_two_for_version_ranges() -> None:
    a = app(conditions=[cond("Held", message="holding HelmRelease 1.2.0"),
                        cond("Gated", reason="VersionRange")])
    row = build_app_row(a)
    assert row.hold is not None
    assert row.hold.message == "holding HelmRelease 1.2.0"
    assert row.hold.line == "release record (line 2)"
    assert row.hold.since == dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
    assert build_app_row(app(conditions=[cond("Held")])).hold.line == "apply time (line 1)"  # type: ignore[union-attr]


def test_inbox_groups_by_source_and_type() -> None:
    helm = app("a", chartSource={"kind": "HelmRepository", "name": "r", "namespace": "flux"},
               availableUpdates=[CHART_CAND, IMAGE_CAND],
               availableUpdate={"version": "1.1.0", "type": "minor"})
    oci = app("b", chartSource={"kind": "OCIRepository", "name": "o", "namespace": "flux"},
              availableUpdates=[{**CHART_CAND, "type": "patch", "version": "1.0.1"}])
    git = app("c", chartSource={"kind": "GitRepository", "name": "g", "namespace": "flux"},
              availableUpdates=[CHART_CAND])
    inbox = build_inbox([oci, git, helm])
    assert [r.name for r in inbox.rows] == ["a", "b", "c"]  # sorted
    assert set(inbox.updates) == {UpdateGroup.CHART_HELM_REPOSITORY, UpdateGroup.CHART_OCI,
                                  UpdateGroup.CHART_OTHER, UpdateGroup.IMAGE}
    helm_minor = inbox.updates[UpdateGroup.CHART_HELM_REPOSITORY][UpdateType.MINOR]
    assert [(u.app, u.version, u.allowed) for u in helm_minor] == [("a", "1.1.0", True)]
    image = inbox.updates[UpdateGroup.IMAGE][UpdateType.MAJOR][0]
    assert (image.values_path, image.allowed) == ("image.tag", False)  # policy picked chart
    assert inbox.updates[UpdateGroup.CHART_OCI][UpdateType.PATCH][0].app == "b"
    assert inbox.update_count == 4
    assert inbox.counts[AppState.UPDATE_AVAILABLE] == 1


def test_major_updates_listed_first() -> None:
    a = app(availableUpdates=[{**CHART_CAND, "type": "patch", "version": "1.0.1"},
                              {**CHART_CAND, "type": "major", "version": "2.0.0"}])
    types = list(build_inbox([a]).updates[UpdateGroup.CHART_OTHER])
    assert types == [UpdateType.MAJOR, UpdateType.PATCH]


def upgrade(name: str, created: str, **extra: Any) -> UpgradeRequest:
    return UpgradeRequest.from_dict({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "UpgradeRequest",
        "metadata": {"name": name, "namespace": "apps", "creationTimestamp": created,
                     "annotations": {"fluxup.dev/requested-by": "oidc:alice"}},
        "spec": {"managedAppRef": {"name": "web"}, "targetVersion": "1.1.0",
                 **extra.pop("spec", {})},
        "status": extra})


def test_activity_newest_first_with_requester() -> None:
    old = upgrade("old", "2026-03-01T09:00:00Z", phase="Succeeded")
    new = upgrade("new", "2026-03-01T11:00:00Z", phase="Snapshotting",
                  previousIdentity={"version": "1.0.0"}, targetIdentity={"version": "1.1.0"})
    dry = upgrade("dry", "2026-03-01T10:00:00Z", spec={"dryRun": True})
    rb = RollbackRequest.from_dict({
        "apiVersion": "fluxup.dev/v1alpha1", "kind": "RollbackRequest",
        "metadata": {"name": "rb", "namespace": "apps", "creationTimestamp": T0},
        "spec": {"upgradeRequestRef": {"name": "old"}}, "status": {"managedApp": "web"}})
    items = build_activity([old, new, dry], [rb], limit=3)
    assert [i.name for i in items] == ["new", "dry", "rb"]
    assert items[0].summary == "1.0.0 → 1.1.0"
    assert items[0].requested_by == "oidc:alice"
    assert items[1].summary.endswith("(dry run)")
    assert (items[2].kind, items[2].app, items[2].summary) == ("RollbackRequest", "web",
                                                               "undo old")


def test_values_diff() -> None:
    before = Identity("1.0.0", (ImageTag("image.tag", "1.0"), ImageTag("db.tag", "15")))
    after = Identity("1.1.0", (ImageTag("image.tag", "1.1"), ImageTag("db.tag", "15"),
                               ImageTag("sidecar.tag", "3")))
    assert build_values_diff(before, after) == (
        ValueChange("chart version", "1.0.0", "1.1.0"),
        ValueChange("values.image.tag", "1.0", "1.1"),
        ValueChange("values.sidecar.tag", None, "3"),
    )
    assert build_values_diff(before, before) == ()
    assert build_values_diff(None, Identity("2.0.0")) == (ValueChange("chart version", None,
                                                                      "2.0.0"),)


@pytest.mark.parametrize(("seconds", "text"), [(5, "5s"), (120, "2m"), (7200, "2h"),
                                               (3 * 86400, "3d"), (-10, "0s")])
def test_describe_age(seconds: int, text: str) -> None:
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert describe_age(now - dt.timedelta(seconds=seconds), now) == text
    assert describe_age(None, now) == "—"


def _fleet() -> list[ManagedApp]:
    """Three apps: two with updates (one held), one up to date."""
    return [
        app("a", availableUpdates=[CHART_CAND, IMAGE_CAND],
            availableUpdate={"version": "1.1.0", "type": "minor"}),
        app("b", ns="other", availableUpdates=[CHART_CAND], currentVersion="1.0.0",
            conditions=[cond("Held")]),
        app("c", currentVersion="1.0.0"),
    ]


def test_filter_inbox_by_state_keeps_their_updates_and_the_totals() -> None:
    inbox = build_inbox(_fleet())
    assert filter_inbox(inbox, None) is inbox
    held = filter_inbox(inbox, AppState.HELD)
    assert [r.key for r in held.rows] == ["other/b"]
    assert [r.key for r in held.held] == ["other/b"]
    assert [(u.namespace, u.app) for u in held.update_list] == [("other", "b")]
    assert held.counts == inbox.counts  # the filter labels show totals
    none = filter_inbox(inbox, AppState.ROLLING_BACK)
    assert (none.rows, none.updates, none.held) == ((), {}, ())


def test_update_list_is_display_order_and_regroups() -> None:
    inbox = build_inbox(_fleet())
    flat = inbox.update_list
    assert len(flat) == inbox.update_count == 3
    assert group_updates(flat) == inbox.updates
    assert group_updates(flat[:1]) == {flat[0].group: {flat[0].type: (flat[0],)}}


def test_parse_inbox_query() -> None:
    assert parse_inbox_query({}) == InboxQuery()
    q = parse_inbox_query({"namespace": "team-a", "state": "Held", "page": "2",
                           "updates_page": "3", "per_page": "10", "other": "ignored"})
    assert q == InboxQuery("team-a", AppState.HELD, 2, 3, 10)
    assert q.link() == "?namespace=team-a&state=Held&page=2&updates_page=3&per_page=10"
    assert q.link(page=1, state=None) == "?namespace=team-a&updates_page=3&per_page=10"
    assert InboxQuery().link() == "?"
    assert InboxQuery().link(page=2) == "?page=2"


@pytest.mark.parametrize(("query", "message"), [
    ({"state": "Sleeping"}, r"\?state= must be one of Upgrading, RollingBack, Held"),
    ({"state": "held"}, r"\?state= must be one of"),
    ({"namespace": "../kube-system"}, r"\?namespace= must be a namespace name"),
    ({"namespace": "A"}, r"\?namespace= must be a namespace name"),
    ({"page": "x"}, r"\?page= must be a whole number"),
    ({"updates_page": "0"}, r"\?updates_page= must be a whole number"),
    ({"per_page": "501"}, r"\?per_page= must be a whole number from 1 to 500"),
])
def test_bad_inbox_query_is_refused(query: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_inbox_query(query)
