"""Every page template renders fully populated objects (the status examples the operator
writes) and escapes what users control; the view models they show are tested in
``tests/logic``."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from fluxup.api.managedapp import ManagedApp
from fluxup.api.rollbackrequest import RollbackRequest
from fluxup.api.upgraderequest import UpgradeRequest
from fluxup.logic.inbox import InboxQuery, build_inbox, build_values_diff, describe_age
from fluxup.logic.maintenance_window import determine_window
from fluxup.logic.operations import build_data_loss_warning, build_snapshot_sets
from fluxup.ui.auth import User
from fluxup.ui.render import build_templates
from fluxup.ui.routes_pages import dashboard_context
from fluxup.ui.service import AppDetail, SnapshotRow
from tests.api.examples import STATUS_EXAMPLES

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def obj(kind: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "fluxup.dev/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": "apps", **meta}, "spec": spec,
            "status": STATUS_EXAMPLES[kind]}


APP = ManagedApp.from_dict(obj("ManagedApp", "web<b>", {"helmReleaseRef": {"name": "web"}}))
UP = UpgradeRequest.from_dict(obj("UpgradeRequest", "web-ui-1",
                                  {"managedAppRef": {"name": "web"}, "dryRun": True},
                                  annotations={"fluxup.dev/requested-by": "oidc:alice"}))
RB = RollbackRequest.from_dict(obj("RollbackRequest", "web-rb",
                                   {"upgradeRequestRef": {"name": "web-ui-1"}}))


def render(template: str, **context: Any) -> str:
    user = User("oidc:alice", ("oidc:team-a",), "Alice", "tok", "session")
    return build_templates().get_template(template).render(
        user=user, csrf=user.csrf, now=NOW, age=lambda d: describe_age(d, NOW), path="/",
        **context)


def test_dashboard() -> None:
    html = render("dashboard.html", **dashboard_context(build_inbox([APP], [UP], [RB]),
                                                        InboxQuery()))
    assert "web&lt;b&gt;" in html
    assert "web<b>" not in html
    assert 'name="csrf_token"' in html or "X-CSRF-Token" in html


def test_app_detail_confirm_rollback_progress_snapshots_settings() -> None:
    sets = build_snapshot_sets([UP], "web")
    detail = AppDetail(APP, obj("ManagedApp", "web", {"helmReleaseRef": {"name": "web"}}),
                       [UP], [RB], sets, {"image": {"tag": "1"}})
    assert "Review upgrade" in render("app.html", d=detail, app=APP, snapshots=[],
                                      window=determine_window(None, NOW))
    html = render("confirm.html", app=APP, up=UP, ready=True,
                  values_diff=build_values_diff(UP.status.previous_identity,
                                                UP.status.target_identity))
    assert "Git diff" in html
    choices = [(s, build_data_loss_warning(s, "apps", NOW)) for s in sets]
    assert "Data loss" in render("rollback.html", app=APP, choices=choices, chosen=None)
    for kind, req in (("upgrades", UP), ("rollbacks", RB)):
        assert 'sse-connect="/stream/' in render("progress.html", req=req, kind=kind,
                                                 live=True)
    row = SnapshotRow("apps", "s1", "web", "web-ui-1", "data", True, "1Gi", None, None)
    assert "Delete snapshot" in render("snapshots.html", rows=[row])
    assert "may not" in render("settings.html", ui={"a": 1}, operator={}, can_upgrade=False)
    assert "Not allowed" in render("error.html", status_code=403, message="forbidden")


@pytest.mark.parametrize("phase", ["Failed", "Succeeded"])
def test_progress_end_states(phase: str) -> None:
    up = UpgradeRequest.from_dict({**obj("UpgradeRequest", "u", {"managedAppRef": {
        "name": "web"}}), "status": {**STATUS_EXAMPLES["UpgradeRequest"], "phase": phase}})
    html = render("_progress.html", req=up, kind="upgrades")
    assert ("Roll back" in html) is True
    assert ("The upgrade failed" in html) is (phase == "Failed")
    assert ("Upgrade complete" in html) is (phase == "Succeeded")


def test_review_buttons_send_what_each_candidate_is() -> None:
    """A chart candidate posts its version, an image one its value path and tag; an image
    without a known value path has no button (its tag is not a chart version)."""
    status = {"currentVersion": "1.0.0", "availableUpdates": [
        {"source": "chart", "name": "web", "version": "1.2.0", "type": "minor"},
        {"source": "image", "name": "ghcr.io/x/web", "version": "2.0.0", "type": "major",
         "valuesPath": "image.tag"},
        {"source": "image", "name": "ghcr.io/x/side", "version": "3.0.0", "type": "major"}]}
    raw = {**obj("ManagedApp", "web", {"helmReleaseRef": {"name": "web"}}), "status": status}
    app = ManagedApp.from_dict(raw)
    inbox = render("dashboard.html", **dashboard_context(build_inbox([app]), InboxQuery()))
    detail = render("app.html", d=AppDetail(app, raw, [], [], (), {}), app=app, snapshots=[],
                    window=determine_window(None, NOW))
    for html in (inbox, detail):
        forms = re.findall(r'<form method="post" action="/apps/apps/web/preview".*?</form>',
                           html, re.S)
        forms = [f for f in forms if 'type="hidden" name="version"' in f or "image_tag" in f]
        assert len(forms) == 2, forms  # (the app page's free-version form aside)
        chart = next(f for f in forms if 'name="version" value="1.2.0"' in f)
        assert "image_path" not in chart
        image = next(f for f in forms if 'name="image_tag" value="2.0.0"' in f)
        assert 'name="image_path" value="image.tag"' in image
        assert 'name="version"' not in image
        assert "3.0.0" not in "".join(forms)
        assert "no values path known" in html
    assert 'aria-label="Review upgrade of apps/web to 1.2.0"' in inbox
    assert 'aria-label="Review upgrade of apps/web image.tag to 2.0.0"' in inbox


@pytest.mark.parametrize(("spec", "shown"), [
    ({}, "none: every upgrade is started by a person"),
    ({"chart": {"autoUpdate": "patch"}}, "patch updates of the chart start on their own, at any "
                                         "time"),
    ({"chart": {"autoUpdate": "minor"},
      "maintenanceWindow": {"days": ["Sun"], "start": "11:00", "end": "13:00",
                            "timeZone": "UTC"}},
     "minor updates of the chart start on their own, only inside the maintenance window Sun "
     "11:00-13:00 UTC (open now)"),
    ({"chart": {"autoUpdate": "patch"},
      "maintenanceWindow": {"start": "02:00", "end": "04:00", "timeZone": "Mars/Olympus"}},
     "not a time zone this system knows"),
])
def test_app_page_says_what_starts_on_its_own_and_when(spec: dict[str, Any], shown: str) -> None:
    """The app page shows autoUpdate and the maintenance window, and whether it is open."""
    raw = obj("ManagedApp", "web", {"helmReleaseRef": {"name": "web"}, "versionPolicy": spec})
    app = ManagedApp.from_dict(raw)
    window = determine_window(app.spec.version_policy.maintenance_window, NOW)
    html = render("app.html", d=AppDetail(app, raw, [], [], (), {}), app=app, snapshots=[],
                  window=window)
    auto = re.search(r'<dd id="auto-update">(.*?)</dd>', html, re.S)
    assert auto is not None
    assert shown in re.sub(r"<[^>]+>", "", auto.group(1)), auto.group(1)
