"""A bypass covers one identity (bound when it appears), is audited, and ends once that
identity runs (DESIGN.md §2, rule 4)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fluxup.api import annotations as ann
from fluxup.logic.admitted import parse_admitted
from fluxup.logic.bypass import (
    BYPASS_RECORDED,
    Binding,
    BypassAction,
    build_binding,
    determine_binding,
    determine_bypass_action,
    parse_binding,
)
from fluxup.logic.identity import GatedKind, Identity

V125 = Identity(chart="12.5.0", source="chart:app@/apps/")
V126 = Identity(chart="12.6.0", source="chart:app@/apps/")
B125 = build_binding(V125, used=True)


def obj(notes: dict[str, str] | None = None, history: str | None = None,
        version: str = "12.5.0") -> dict[str, Any]:
    o: dict[str, Any] = {"metadata": {"name": "app", "namespace": "apps",
                                      "annotations": dict(notes or {})},
                         "spec": {"chart": {"spec": {"chart": "app", "version": version}}}}
    if history is not None:
        o["status"] = {"history": [{"chartVersion": history}]}
    return o


@pytest.mark.parametrize(("text", "expected"), [
    (B125, Binding(V125, True)),
    (build_binding(V125, used=False), Binding(V125, False)),
    (json.dumps({"identity": json.loads(V125.to_json())}), None),
    (json.dumps({"identity": json.loads(V125.to_json()), "used": "yes"}), None),
    (json.dumps({"identity": "12.5.0", "used": True}), None),
    (V125.to_json(), None),
    ("{", None),
    (None, None),
])
def test_parse_binding(text: str | None, expected: Binding | None) -> None:
    assert parse_binding(text) == expected


@pytest.mark.parametrize(("incoming", "stored", "holds", "expected"), [
    # no bypass: no binding, whatever was stored
    ({}, {ann.BYPASS: "x", ann.BYPASSED: B125}, True, None),
    # a new bypass covers what is asked for now; used when the gate would hold it
    ({ann.BYPASS: "x"}, {}, True, build_binding(V126, True)),
    ({ann.BYPASS: "x"}, None, False, build_binding(V126, False)),
    # a stored bypass keeps its binding, whatever the request sends
    ({ann.BYPASS: "x"}, {ann.BYPASS: "x", ann.BYPASSED: B125}, True, B125),
    ({ann.BYPASS: "y", ann.BYPASSED: build_binding(V126, True)},
     {ann.BYPASS: "x", ann.BYPASSED: B125}, True, B125),
    # a stored bypass without binding (written before bindings) is bound now
    ({ann.BYPASS: "x"}, {ann.BYPASS: "x"}, True, build_binding(V126, True)),
    # a stored binding without its bypass is stale: a new bypass binds anew
    ({ann.BYPASS: "x"}, {ann.BYPASSED: B125}, True, build_binding(V126, True)),
])
def test_determine_binding(incoming: dict[str, str], stored: dict[str, str] | None,
                           holds: bool, expected: str | None) -> None:
    hr = GatedKind.HELM_RELEASE
    stored_obj = parse_admitted(hr, obj(stored)) if stored is not None else None
    assert determine_binding(parse_admitted(hr, obj(incoming)), stored_obj, V126,
                             holds) == expected


@pytest.mark.parametrize(("notes", "history", "action"), [
    ({}, "12.4.0", BypassAction.NONE),
    # audited once per reason
    ({ann.BYPASS: "INC-1", ann.BYPASSED: B125}, "12.4.0", BypassAction.AUDIT),
    ({ann.BYPASS: "INC-1", ann.BYPASSED: B125, BYPASS_RECORDED: "INC-0"}, "12.4.0",
     BypassAction.AUDIT),
    ({ann.BYPASS: "INC-1", ann.BYPASSED: B125, BYPASS_RECORDED: "INC-1"}, "12.4.0",
     BypassAction.NONE),
    # ended once the covered identity runs (and was audited)
    ({ann.BYPASS: "INC-1", ann.BYPASSED: B125, BYPASS_RECORDED: "INC-1"}, "12.5.0",
     BypassAction.CLEAR),
    ({ann.BYPASS: "INC-1", ann.BYPASSED: B125}, "12.5.0", BypassAction.AUDIT),
    ({ann.BYPASS: "INC-1", ann.BYPASSED: B125, BYPASS_RECORDED: "INC-1"}, None,
     BypassAction.NONE),
    # an unused bypass covers only what ran: harmless, left alone
    ({ann.BYPASS: "x", ann.BYPASSED: build_binding(V125, used=False)}, "12.5.0",
     BypassAction.NONE),
    # unbound (before bindings): audited, never ended by the operator
    ({ann.BYPASS: "INC-1"}, "12.5.0", BypassAction.AUDIT),
    ({ann.BYPASS: "INC-1", BYPASS_RECORDED: "INC-1"}, "12.5.0", BypassAction.NONE),
])
def test_determine_bypass_action(notes: dict[str, str], history: str | None,
                                 action: BypassAction) -> None:
    assert determine_bypass_action(GatedKind.HELM_RELEASE, obj(notes, history)) is action


def test_a_bypass_is_not_ended_while_a_different_spec_is_held() -> None:
    """Held again at 12.6.0 while 12.4.0 runs: the 12.5.0 bypass has not run, it stays."""
    notes = {ann.BYPASS: "INC-1", ann.BYPASSED: B125, BYPASS_RECORDED: "INC-1",
             ann.HELD: V126.to_json()}
    assert determine_bypass_action(
        GatedKind.HELM_RELEASE, obj(notes, "12.4.0", version="12.6.0")) is BypassAction.NONE
