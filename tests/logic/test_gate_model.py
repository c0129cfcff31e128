"""The invariant of line 1 in a pure model, for random sequences of events.

Flux applies versions from Git (``suspend`` absent, ``false`` or ``true``; a bypass in the
manifest or not), the operator approves a held version for a request (after its
snapshots) and ends requests (removing their approval), people un-suspend (with or
without a bypass), the operator's timer audits and ends bypasses, and helm-controller
runs whatever is not suspended. Every write goes through the gate as the API server
would send it (mutate, then validate). The invariant: helm-controller never runs a new
version unless the request in flight approved exactly it, or a person deliberately
bypassed exactly it — an approval never outlives its request, a bypass never covers a
later version, and Flux's applies are never denied.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fluxup.api import annotations as ann
from fluxup.logic.admitted import build_requester, parse_admission
from fluxup.logic.bypass import (
    BYPASS_RECORDED,
    BypassAction,
    covers,
    determine_bypass_action,
)
from fluxup.logic.gate import build_mutation, evaluate
from fluxup.logic.gate_validation import validate_gated_object
from fluxup.logic.identity import (
    GatedKind,
    approval_of,
    build_approval,
    determine_desired,
    parse_identity,
)

HR = GatedKind.HELM_RELEASE
OPERATOR = "system:serviceaccount:fluxup-system:fluxup-operator"
FLUX = "system:serviceaccount:flux-system:kustomize-controller"
NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
VERSIONS = ("1.0.0", "1.1.0", "1.2.0")
#: Annotations the gate writes during Flux's apply: Flux's next apply may drop them.
GATE_WRITTEN = (ann.HELD, ann.HELD_SINCE, ann.BYPASSED)


def spec(version: str) -> dict[str, Any]:
    return {"chart": {"spec": {"chart": "app", "version": version,
                               "sourceRef": {"kind": "HelmRepository", "name": "charts"}}}}


@dataclass
class Cluster:
    stored: dict[str, Any] = field(default_factory=lambda: {
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "app", "namespace": "apps",
                     "labels": {ann.MANAGED_APP_LABEL: "app"}, "annotations": {}},
        "spec": spec("1.0.0"),
        "status": {"history": [{"chartVersion": "1.0.0"}]}})
    running: str = "1.0.0"
    request: tuple[str, str] | None = None  # (ref, approved identity JSON)
    requests: int = 0
    bypassed: set[str] = field(default_factory=set)  # identities a person bypassed

    def write(self, incoming: dict[str, Any], user: str) -> bool:
        """Send ``incoming`` through the gate; store it when admitted."""
        requester = build_requester(user, OPERATOR)
        admission = parse_admission(HR, incoming, self.stored, "UPDATE", requester)
        decision = evaluate(admission)
        mutation = build_mutation(admission, decision, incoming, NOW)
        final = jsonpatch.apply_patch(copy.deepcopy(incoming), list(mutation.patch))
        admitted = parse_admission(HR, final, self.stored, "UPDATE", requester)
        verdict = validate_gated_object(admitted, evaluate(admitted))
        if user == FLUX:
            assert verdict.allowed, f"Flux's apply denied: {verdict.message}"
        if not verdict.allowed:
            return False
        final["status"] = self.stored["status"]
        self.stored = final
        return True

    def notes(self) -> dict[str, str]:
        result: dict[str, str] = self.stored["metadata"].setdefault("annotations", {})
        return result

    def desired(self) -> str:
        return determine_desired(HR, self.stored).identity.to_json()


Event = tuple[str, Any, Any]
events = st.lists(st.one_of(
    st.tuples(st.just("apply"), st.sampled_from(VERSIONS),
              st.tuples(st.sampled_from(["absent", False, True]), st.booleans())),
    st.tuples(st.sampled_from(["approve", "helm", "unsuspend", "bypass", "tick"]),
              st.none(), st.none()),
    st.tuples(st.just("end"), st.booleans(), st.none()),
), max_size=30)


@settings(max_examples=600, deadline=None)
@given(events)
# a bypass kept in Git is bound to what ran (1.0.0); after 1.1.0 ran, Git's revert to 1.0.0
# must be held like any other change, not let back in by that stale binding
@example([("apply", "1.1.0", ("absent", True)), ("approve", None, None), ("helm", None, None),
          ("apply", "1.0.0", ("absent", False)), ("helm", None, None)])
def test_nothing_runs_unless_approved_for_the_live_request_or_bypassed(
    history: list[Event],
) -> None:
    c = Cluster()
    for kind, a, b in history:
        if kind == "apply":  # kustomize-controller's server-side apply of Git
            suspend, git_bypass = b
            incoming = copy.deepcopy(c.stored)
            incoming["spec"] = spec(a)
            if suspend != "absent":
                incoming["spec"]["suspend"] = suspend
            notes = incoming["metadata"]["annotations"]
            for name in GATE_WRITTEN:
                notes.pop(name, None)
            if git_bypass:
                notes[ann.BYPASS] = "kept in Git"
            c.write(incoming, FLUX)
        elif kind == "approve":  # a request for the held version: snapshots, approval
            held = c.notes().get(ann.HELD)
            if held is None or c.request is not None:
                continue
            c.requests += 1
            ref = f"UpgradeRequest/apps/r{c.requests}"
            incoming = copy.deepcopy(c.stored)
            incoming["metadata"]["annotations"][ann.APPROVED] = build_approval(held, ref)
            incoming["spec"]["suspend"] = False
            assert c.write(incoming, OPERATOR)
            c.request = (ref, parse_identity(held).to_json())
        elif kind == "end":  # the request ends: its approval goes (success: released)
            if c.request is None:
                continue
            incoming = copy.deepcopy(c.stored)
            approval = approval_of(incoming)
            if approval is not None and approval.request == c.request[0]:
                del incoming["metadata"]["annotations"][ann.APPROVED]
            if a and c.running == parse_identity(c.request[1]).chart:
                incoming["metadata"]["annotations"][ann.RELEASED] = c.request[1]
            assert c.write(incoming, OPERATOR)
            c.request = None
        elif kind == "unsuspend":  # a person, without a bypass
            incoming = copy.deepcopy(c.stored)
            incoming["spec"]["suspend"] = False
            c.write(incoming, "alice")
        elif kind == "bypass":  # a person's emergency release
            incoming = copy.deepcopy(c.stored)
            incoming["metadata"]["annotations"][ann.BYPASS] = "INC-1"
            incoming["spec"]["suspend"] = False
            if c.write(incoming, "alice") and ann.HELD not in c.notes():
                c.bypassed.add(c.desired())
        elif kind == "tick":  # the operator's timer: audit and end bypasses
            action = determine_bypass_action(HR, c.stored)
            incoming = copy.deepcopy(c.stored)
            notes = incoming["metadata"]["annotations"]
            if action is BypassAction.AUDIT:
                notes[BYPASS_RECORDED] = notes[ann.BYPASS]
            elif action is BypassAction.CLEAR:
                for name in (ann.BYPASS, ann.BYPASSED, BYPASS_RECORDED):
                    notes.pop(name, None)
            if action is not BypassAction.NONE:
                assert c.write(incoming, OPERATOR)
        elif kind == "helm" and c.stored["spec"].get("suspend") is not True:
            wanted = determine_desired(HR, c.stored).identity
            if wanted.chart != c.running:
                approved = c.request is not None and c.request[1] == wanted.to_json()
                bypassed = wanted.to_json() in c.bypassed and covers(
                    c.notes().get(ann.BYPASSED), wanted)  # and the bypass is still there
                assert approved or bypassed, (
                    f"{wanted.chart} ran without snapshots (running {c.running}, "
                    f"request {c.request}, bypassed {c.bypassed})")
                c.running = wanted.chart or c.running
                c.stored["status"] = {"history": [{"chartVersion": c.running}]}

