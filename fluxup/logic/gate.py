"""The admission gate's rules (DESIGN.md §2): hold every upgrade until it is approved.

:func:`evaluate` decides from one request's parsed views
(:class:`~fluxup.logic.admitted.Admission`) whether a managed HelmRelease or
OCIRepository may proceed (pass) or must be held; :func:`build_mutation` turns the
decision into the mutating webhook's edits and warnings (the JSON Patch addressing them
is built by :mod:`fluxup.logic.gate_patch`). The validating side lives in
:mod:`fluxup.logic.gate_validation`. Called by ``webhook/``. Pure: no I/O, no clock
(``now`` is passed in), never raises on malformed objects — when the rules cannot be
evaluated the answer is *hold*.

Decisions, in order:

1. The incoming object's policy (``fluxup.dev/image-paths``) is unreadable → hold.
2. Nothing in the desired identity can be gated (chart version range, OCI ``ref.semver``
   or floating tag, and no image paths) → pass (the ManagedApp reports VersionRange).
3. UPDATE without the stored object → hold (cannot know what runs).
4. Nothing was ever released (CREATE without ``fluxup.dev/released``, or a stored object
   with neither status nor ``released``) → pass: a first install has no data to protect.
5. desired == deployed → pass.  6. desired == approved → pass (``fluxup.dev/approved``
   binds the identity to the request it was approved for; one naming no request approves
   nothing, and the operator removes it when the request ends).  7. Otherwise hold.

How a hold is written (:func:`build_mutation`):

* ``spec.suspend: true`` plus ``fluxup.dev/held`` (desired identity JSON) and
  ``fluxup.dev/held-since`` (kept while the held identity stays the same). Flux's
  server-side apply drops fields it set earlier, so the gate re-adds them on every apply.
* An explicit ``spec.suspend: false`` on an object that is stored suspended, sent by a
  person, is a deliberate un-suspend: the gate does not re-suspend it, and the validating
  webhook denies it (unless ``fluxup.dev/bypass`` covers it or the operator asks). An
  *absent* ``suspend`` (what Flux's apply or ``flux resume`` leaves) is re-added, and so
  is Flux's own ``suspend: false`` from a Git manifest: Flux's apply is never denied on
  hold grounds (that would stall its whole Kustomization), it stays held.
* With ``fluxup.dev/bypass: "<reason>"`` on the object the gate does not hold the one
  identity the bypass covers (``fluxup.dev/bypassed``, bound when the bypass appeared;
  :mod:`fluxup.logic.bypass`); it warns. Any other identity is held as usual.
* When the decision is pass, stale ``held``/``held-since`` annotations are removed; the
  gate never un-suspends anything itself (the operator does, with its own field manager).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from fluxup.api import annotations as ann
from fluxup.api.admission import PatchOperation
from fluxup.logic.admitted import Admission, AdmittedObject, Deployed, determine_deployed
from fluxup.logic.bypass import covers, determine_binding, parse_binding
from fluxup.logic.gate_patch import Edits, build_patch
from fluxup.logic.identity import Desired

__all__ = [
    "GateDecision",
    "Mutation",
    "MutationAction",
    "Outcome",
    "Reason",
    "build_mutation",
    "bypass_applies",
    "decide_edits",
    "evaluate",
    "expected_binding",
    "format_rfc3339",
    "is_deliberate_unsuspend",
]


class Outcome(StrEnum):
    ALLOW = "allow"
    HOLD = "hold"


class Reason(StrEnum):
    """Why the gate decided as it did (also the ``decision`` label of the metrics)."""

    POLICY_UNREADABLE = "PolicyUnreadable"
    VERSION_RANGE = "VersionRange"
    STORED_OBJECT_MISSING = "StoredObjectMissing"
    FIRST_INSTALL = "FirstInstall"
    UNCHANGED = "Unchanged"
    APPROVED = "Approved"
    NOT_APPROVED = "NotApproved"


@dataclass(frozen=True)
class GateDecision:
    outcome: Outcome
    reason: Reason
    desired: Desired
    deployed: Deployed | None = None

    @property
    def holds(self) -> bool:
        return self.outcome is Outcome.HOLD


def evaluate(admission: Admission) -> GateDecision:
    """Apply the rules (decisions 1 to 7 above) to one CREATE/UPDATE."""
    desired = admission.desired
    if desired.problems:
        return GateDecision(Outcome.HOLD, Reason.POLICY_UNREADABLE, desired)
    if desired.identity.is_empty:
        return GateDecision(Outcome.ALLOW, Reason.VERSION_RANGE, desired)
    updating = admission.operation == "UPDATE"
    if updating and admission.stored is None:
        return GateDecision(Outcome.HOLD, Reason.STORED_OBJECT_MISSING, desired)
    deployed = determine_deployed(admission.stored if updating else None, admission.incoming)
    if deployed.nothing:
        return GateDecision(Outcome.ALLOW, Reason.FIRST_INSTALL, desired, deployed)
    if deployed.satisfied_by(desired.identity):
        return GateDecision(Outcome.ALLOW, Reason.UNCHANGED, desired, deployed)
    approval = admission.incoming.approval
    if approval is not None and desired.identity.satisfies(approval.identity):
        return GateDecision(Outcome.ALLOW, Reason.APPROVED, desired, deployed)
    return GateDecision(Outcome.HOLD, Reason.NOT_APPROVED, desired, deployed)


def format_rfc3339(now: dt.datetime) -> str:
    """``2024-01-15T10:30:00Z`` (UTC, whole seconds)."""
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_deliberate_unsuspend(admission: Admission) -> bool:
    """An explicit ``suspend: false`` on an object stored suspended, by a person. Flux's
    apply of a Git manifest that says ``suspend: false`` is no decision to release: the
    gate keeps the object held (and never denies Flux's apply, which would stall the
    whole Kustomization)."""
    stored = admission.stored
    return (
        not admission.requester.flux_apply
        and admission.incoming.suspend is False
        and stored is not None
        and stored.suspend is True
    )


def expected_binding(admission: Admission, decision: GateDecision) -> str | None:
    """The ``fluxup.dev/bypassed`` binding the incoming object must carry (see
    :mod:`fluxup.logic.bypass`)."""
    deployed = decision.deployed
    running = deployed.candidates[0] if deployed is not None and deployed.candidates else None
    return determine_binding(admission.incoming, admission.stored, decision.desired.identity,
                             decision.holds, running, admission.requester.flux_apply)


def bypass_applies(admission: Admission, decision: GateDecision) -> bool:
    """A held identity is let through by the bypass on the object: only the one identity
    the bypass was bound to when it appeared."""
    if not decision.holds or admission.incoming.bypass is None:
        return False
    return covers(expected_binding(admission, decision), decision.desired.identity)


def hold_warning(obj: AdmittedObject, decision: GateDecision) -> str:
    if decision.reason is Reason.POLICY_UNREADABLE:
        problem = "; ".join(decision.desired.problems)
        return f"FluxUp holds {obj.app}: cannot read its gate policy ({problem})"
    if decision.reason is Reason.STORED_OBJECT_MISSING:
        return f"FluxUp holds {obj.app}: the request lacks the stored object"
    return (
        f"FluxUp holds {obj.app} {decision.desired.identity.describe()} "
        "until pre-upgrade snapshots are ready"
    )


MutationAction = Literal["allow", "hold", "bypass", "unsuspend"]


@dataclass(frozen=True)
class Mutation:
    """The mutating webhook's answer: JSON Patch operations, warnings, what it did."""

    patch: tuple[PatchOperation, ...]
    warnings: tuple[str, ...]
    action: MutationAction


def _is_timestamp(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return "T" in text


def _held_since(held: str, admission: Admission, now: dt.datetime) -> str:
    """Keep the start of a hold while the held identity stays the same."""
    for obj in (admission.incoming, admission.stored):
        since = obj.held_since if obj is not None else None
        if obj is not None and obj.held == held and since and _is_timestamp(since):
            return since
    return format_rfc3339(now)


def _range_warnings(obj: AdmittedObject, decision: GateDecision) -> tuple[str, ...]:
    if not decision.desired.ungated:
        return ()
    why = "; ".join(decision.desired.ungated)
    return (f"FluxUp cannot gate {obj.app} per version: {why}",)


def _stale_bypass_warning(
    obj: AdmittedObject, binding: str | None, decision: GateDecision
) -> tuple[str, ...]:
    if obj.bypass is None:
        return ()
    bound = parse_binding(binding)
    what = bound.identity.describe() if bound is not None else "<nothing>"
    return (
        f"FluxUp's bypass on {obj.app} covers only {what}, not "
        f"{decision.desired.identity.describe()}; to release this version without "
        f"snapshots too, remove the annotation {ann.BYPASS} and set it again",
    )


_HELD_PAIR = (ann.HELD, ann.HELD_SINCE)


def decide_edits(
    admission: Admission, decision: GateDecision, now: dt.datetime
) -> tuple[MutationAction, Edits, tuple[str, ...]]:
    """What the mutating webhook does about ``decision``: its action, the edits, the
    warnings. Flux's apply (``requester.flux_apply``) is held, never refused."""
    obj = admission.incoming
    warnings = _range_warnings(obj, decision)
    binding = expected_binding(admission, decision)
    if not decision.holds:
        return "allow", Edits(binding, remove=_HELD_PAIR), warnings
    if obj.bypass is not None and covers(binding, decision.desired.identity):
        note = (
            f"FluxUp gate bypassed for {obj.app} {decision.desired.identity.describe()}: "
            f"{obj.bypass.strip() or '<no reason given>'}"
        )
        return "bypass", Edits(binding, remove=_HELD_PAIR), (*warnings, note)
    warnings = (
        *warnings, *_stale_bypass_warning(obj, binding, decision), hold_warning(obj, decision)
    )
    if is_deliberate_unsuspend(admission):
        return "unsuspend", Edits(binding), warnings
    held = decision.desired.identity.to_json()
    since = _held_since(held, admission, now)
    edits = Edits(binding, suspend=obj.suspend is not True,
                  annotate=((ann.HELD, held), (ann.HELD_SINCE, since)))
    return "hold", edits, warnings


def build_mutation(
    admission: Admission,
    decision: GateDecision,
    incoming: Mapping[str, object],
    now: dt.datetime,
) -> Mutation:
    """The JSON Patch and warnings that enforce ``decision``; ``incoming`` is the object
    as sent (``admission.incoming`` was parsed from it), which the patch addresses."""
    action, edits, warnings = decide_edits(admission, decision, now)
    return Mutation(build_patch(incoming, edits), warnings, action)
