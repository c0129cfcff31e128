"""What deleting a ManagedApp takes back (DESIGN.md §2, rule 5), table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from fluxup.api import annotations as ann
from fluxup.logic.bypass import BYPASS_RECORDED
from fluxup.logic.letgo import (
    SUSPENDED_BY_ROLLBACK,
    build_app_release_patch,
    build_flux_release_patch,
    is_in_flight_for,
    namespace_still_needed,
)

ALL_NOTES = {ann.HELD: "{}", ann.HELD_SINCE: "t", ann.APPROVED: "{}", ann.RELEASED: "{}",
             ann.IMAGE_PATHS: "[]", ann.UPGRADE_REQUEST: "u", ann.BYPASSED: "{}",
             BYPASS_RECORDED: "r"}


def flux(owner: str | None = "web", notes: dict[str, str] | None = None,
         suspend: Any = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "web", "namespace": "apps",
                                        "labels": {"other": "x"},
                                        "annotations": dict(notes or {})},
                           "spec": {}}
    if owner is not None:
        obj["metadata"]["labels"][ann.MANAGED_APP_LABEL] = owner
    if suspend is not None:
        obj["spec"]["suspend"] = suspend
    return obj


@pytest.mark.parametrize(("obj", "patch"), [
    # held by the gate: label, every FluxUp annotation and the hold go
    (flux(notes=ALL_NOTES, suspend=True),
     {"metadata": {"labels": {ann.MANAGED_APP_LABEL: None},
                   "annotations": dict.fromkeys(ALL_NOTES)},
      "spec": {"suspend": False}}),
    # at rest: label and annotations only
    (flux(notes={ann.RELEASED: "{}", ann.IMAGE_PATHS: "[]"}),
     {"metadata": {"labels": {ann.MANAGED_APP_LABEL: None},
                   "annotations": {ann.RELEASED: None, ann.IMAGE_PATHS: None}}}),
    # suspended by a person (no hold): stays suspended; a person's bypass stays
    (flux(notes={ann.BYPASS: "INC-1"}, suspend=True),
     {"metadata": {"labels": {ann.MANAGED_APP_LABEL: None}}}),
    # suspended by a rollback: stays suspended (data safety first)
    (flux(notes={ann.HELD: "{}", SUSPENDED_BY_ROLLBACK: "RollbackRequest/apps/r"},
          suspend=True),
     {"metadata": {"labels": {ann.MANAGED_APP_LABEL: None},
                   "annotations": {ann.HELD: None}}}),
    # held but already released from suspend: nothing to un-suspend
    (flux(notes={ann.HELD: "{}"}, suspend=False),
     {"metadata": {"labels": {ann.MANAGED_APP_LABEL: None},
                   "annotations": {ann.HELD: None}}}),
    # labelled for another app (a shared OCIRepository): left as it is
    (flux(owner="db", notes=ALL_NOTES, suspend=True), None),
    # already let go
    (flux(owner=None), None),
])
def test_build_flux_release_patch(obj: dict[str, Any], patch: dict[str, Any] | None) -> None:
    assert build_flux_release_patch(obj, "web") == patch


def app(name: str = "web", storage: str | None = "apps", deleting: bool = False,
        key: bool = True, approved: bool = False) -> dict[str, Any]:
    notes: dict[str, str] = {}
    if storage is not None:
        notes[ann.RELEASE_GATE] = (f'{{"namespace":"{storage}","release":"{name}",'
                                   '"paths":[],"deployed":[]}')
    if approved:
        notes[ann.RELEASE_APPROVED] = "{}"
    meta: dict[str, Any] = {"name": name, "namespace": "apps", "annotations": notes,
                            "labels": {ann.RELEASE_KEY_LABEL: "k"} if key else {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-03-01T10:00:00Z"
    return {"metadata": meta}


def test_build_app_release_patch() -> None:
    assert build_app_release_patch(app(approved=True)) == {"metadata": {
        "labels": {ann.RELEASE_KEY_LABEL: None},
        "annotations": {ann.RELEASE_GATE: None, ann.RELEASE_APPROVED: None}}}
    assert build_app_release_patch(app(storage=None, key=False)) is None


@pytest.mark.parametrize(("others", "needed"), [
    ([], False),
    ([app()], False),  # itself
    ([app("db")], True),
    ([app("db", storage="other")], False),
    ([app("db", deleting=True)], False),
    ([app("db", storage=None)], False),
])
def test_namespace_still_needed(others: list[dict[str, Any]], needed: bool) -> None:
    assert namespace_still_needed("apps", app(deleting=True), others) is needed


@pytest.mark.parametrize(("request_obj", "in_flight"), [
    ({"spec": {"managedAppRef": {"name": "web"}}}, True),
    ({"spec": {"managedAppRef": {"name": "web"}}, "status": {"phase": "Snapshotting"}}, True),
    ({"spec": {"managedAppRef": {"name": "web"}}, "status": {"phase": "Failed"}}, False),
    ({"spec": {"managedAppRef": {"name": "web"}}, "status": {"phase": "Succeeded"}}, False),
    ({"spec": {"managedAppRef": {"name": "db"}}}, False),
    ({"spec": {"upgradeRequestRef": {"name": "u"}},
      "status": {"managedApp": "web", "phase": "RestoringVolumes"}}, True),
    ({"spec": {"upgradeRequestRef": {"name": "u"}}}, False),
])
def test_is_in_flight_for(request_obj: dict[str, Any], in_flight: bool) -> None:
    assert is_in_flight_for(request_obj, "web") is in_flight
