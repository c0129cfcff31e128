"""An emergency bypass covers one identity, is audited, and ends once that identity runs.

``fluxup.dev/bypass: "<reason>"`` lets a person release a held HelmRelease/OCIRepository
without snapshots (DESIGN.md §2, rule 4). So that a bypass left on an object (or kept in
Git) never switches the gate off for later versions, it is *bound*: when the annotation
first appears the mutating webhook records the identity the object asks for in
``fluxup.dev/bypassed`` (:func:`determine_binding`), carries it over on every later write
and lets only that identity through; another identity is held again. The operator audits
the bypass with an Event and a notification and, once the covered identity runs, removes
the bypass, its binding and its audit mark (:func:`determine_bypass_action`).

Used by :mod:`fluxup.logic.gate` (webhook) and :mod:`fluxup.reconcile.bypass` (operator).
Pure; never raises on malformed objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from fluxup.logic.admitted import AdmittedObject, determine_deployed, parse_admitted
from fluxup.logic.gate_values import annotations_of
from fluxup.logic.identity import GatedKind, Identity, parse_bound_identity

__all__ = [
    "BYPASS_RECORDED",
    "Binding",
    "BypassAction",
    "build_binding",
    "covers",
    "determine_binding",
    "determine_bypass_action",
    "parse_binding",
]

#: Annotation the operator writes once it audited a bypass: the reason it recorded.
BYPASS_RECORDED = "fluxup.dev/bypass-recorded"


@dataclass(frozen=True)
class Binding:
    """What a bypass covers: one identity, and whether the gate would have held it when
    the bypass appeared (``used``; an unused bypass covers only what already ran)."""

    identity: Identity
    used: bool


def build_binding(identity: Identity, used: bool) -> str:
    """The ``fluxup.dev/bypassed`` text (canonical JSON)."""
    doc = {"identity": json.loads(identity.to_json()), "used": used}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def parse_binding(text: str | None) -> Binding | None:
    """The binding in ``text``; ``None`` when absent or malformed (covers nothing)."""
    bound = parse_bound_identity(text, "used")
    if bound is None or not isinstance(bound[1], bool):
        return None
    return Binding(bound[0], bound[1])


def determine_binding(
    incoming: AdmittedObject,
    stored: AdmittedObject | None,
    desired: Identity,
    holds: bool,
    deployed: Identity | None = None,
    by_flux: bool = False,
) -> str | None:
    """The ``fluxup.dev/bypassed`` text ``incoming`` must carry (``None``: none).

    No bypass on ``incoming`` → no binding. A bypass the stored object already had keeps
    the stored binding (whatever the request sends: Flux's apply may drop it, a person may
    edit it). Otherwise the bypass is new and covers what ``incoming`` asks for now
    (``holds``: the gate would hold it, so the bypass is what lets it through) — unless it
    arrives with Flux's apply (kept in Git, or back in Git after the operator removed it):
    a bypass is a person's emergency action, so one that comes from Git covers only what
    runs (``deployed``) and lets nothing new through.
    """
    if incoming.bypass is None:
        return None
    if stored is not None and stored.bypass is not None and stored.bypassed is not None:
        return stored.bypassed
    if by_flux and holds:
        return build_binding(deployed if deployed is not None else Identity(), False)
    return build_binding(desired, holds)


def covers(binding: str | None, desired: Identity) -> bool:
    """The binding lets ``desired`` through: only a bypass a person used for exactly that
    identity. An unused binding (a bypass that came with Flux's apply) recorded what ran
    then; once something else ran, letting that identity back in would be a change
    without snapshots, so it never covers anything."""
    parsed = parse_binding(binding)
    return parsed is not None and parsed.used and parsed.identity == desired


class BypassAction(StrEnum):
    NONE = "none"
    #: write a Warning Event and a notification, then mark the reason recorded
    AUDIT = "audit"
    #: the covered identity runs: remove the bypass, its binding and its audit mark
    CLEAR = "clear"


def determine_bypass_action(kind: GatedKind, obj: Mapping[str, object]) -> BypassAction:
    """What the operator does about the bypass on ``obj`` (a stored HelmRelease or
    OCIRepository). A bypass that let nothing through (unused) covers only what already
    ran: it is left alone, harmless. An unbound one (written before bindings) is audited."""
    view = parse_admitted(kind, obj)
    if view.bypass is None:
        return BypassAction.NONE
    binding = parse_binding(view.bypassed)
    if binding is not None and not binding.used:
        return BypassAction.NONE
    if annotations_of(obj).get(BYPASS_RECORDED) != view.bypass:
        return BypassAction.AUDIT
    if binding is None:
        return BypassAction.NONE
    deployed = determine_deployed(view, view)
    if not deployed.nothing and deployed.satisfied_by(binding.identity):
        return BypassAction.CLEAR
    return BypassAction.NONE
