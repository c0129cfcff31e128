"""The admission gate's rules (DESIGN.md §2): hold every upgrade until it is approved.

:func:`evaluate` decides from one admission request's objects alone whether a managed
HelmRelease or OCIRepository may proceed (pass) or must be held; :func:`build_mutation`
turns the decision into the mutating webhook's JSON Patch and warning. The validating
side lives in :mod:`fluxup.logic.gate_validation`. Called by ``webhook/``; the operator
uses the same identity functions. Pure: no I/O, no clock (``now`` is passed in), never
raises on malformed objects — when the rules cannot be evaluated the answer is *hold*.

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
from fluxup.logic.bypass import bypass_reason, determine_binding, parse_binding
from fluxup.logic.bypass import covers as binding_covers
from fluxup.logic.gate_values import annotations_of, get, get_mapping, get_str, labels_of
from fluxup.logic.identity import (
    Deployed,
    Desired,
    GatedKind,
    approved_identity,
    determine_deployed,
    determine_desired,
)

__all__ = [
    "GateDecision",
    "Mutation",
    "MutationAction",
    "Outcome",
    "Reason",
    "app_name",
    "build_mutation",
    "bypass_applies",
    "describe_object",
    "evaluate",
    "expected_binding",
    "format_rfc3339",
    "is_deliberate_unsuspend",
    "is_flux_apply",
    "suspend_value",
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


def evaluate(
    kind: GatedKind,
    incoming: Mapping[str, object],
    stored: Mapping[str, object] | None,
    operation: Literal["CREATE", "UPDATE"],
) -> GateDecision:
    """Apply the rules to one CREATE/UPDATE; ``stored`` is ``oldObject`` (UPDATE only)."""
    desired = determine_desired(kind, incoming)
    if desired.problems:
        return GateDecision(Outcome.HOLD, Reason.POLICY_UNREADABLE, desired)
    if desired.identity.is_empty:
        return GateDecision(Outcome.ALLOW, Reason.VERSION_RANGE, desired)
    if operation == "UPDATE" and stored is None:
        return GateDecision(Outcome.HOLD, Reason.STORED_OBJECT_MISSING, desired)
    deployed = determine_deployed(kind, stored if operation == "UPDATE" else None, incoming)
    if deployed.nothing:
        return GateDecision(Outcome.ALLOW, Reason.FIRST_INSTALL, desired, deployed)
    if deployed.satisfied_by(desired.identity):
        return GateDecision(Outcome.ALLOW, Reason.UNCHANGED, desired, deployed)
    approved = approved_identity(incoming)
    if approved is not None and desired.identity.satisfies(approved):
        return GateDecision(Outcome.ALLOW, Reason.APPROVED, desired, deployed)
    return GateDecision(Outcome.HOLD, Reason.NOT_APPROVED, desired, deployed)


def format_rfc3339(now: dt.datetime) -> str:
    """``2024-01-15T10:30:00Z`` (UTC, whole seconds)."""
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def app_name(obj: object) -> str:
    """The ManagedApp name for messages: the managed-app label, else the object's name."""
    label = labels_of(obj).get(ann.MANAGED_APP_LABEL, "").strip()
    return label or get_str(obj, "metadata", "name") or "<unnamed>"


def describe_object(kind: GatedKind, obj: object) -> str:
    """``HelmRelease my-ns/my-app`` for messages."""
    name = get_str(obj, "metadata", "name") or "<unnamed>"
    namespace = get_str(obj, "metadata", "namespace")
    return f"{kind.value} {namespace}/{name}" if namespace else f"{kind.value} {name}"


def suspend_value(obj: object) -> bool | None:
    """``spec.suspend`` as given: True, False, or None when absent/not a boolean."""
    value = get(obj, "spec", "suspend")
    return value if isinstance(value, bool) else None


#: The field manager and ServiceAccount name of Flux's kustomize-controller, which applies
#: HelmReleases and OCIRepositories from Git.
FLUX_APPLIER = "kustomize-controller"


def is_flux_apply(username: str, options: object) -> bool:
    """The request is an apply by Flux's kustomize-controller (its ServiceAccount in any
    namespace, or its field manager). Taking a request for Flux's only ever makes the gate
    keep the object held instead of denying the change, so a look-alike gains nothing."""
    parts = username.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"] and parts[3] == FLUX_APPLIER:
        return True
    return get_str(options, "fieldManager") == FLUX_APPLIER


def is_deliberate_unsuspend(incoming: object, stored: object, by_flux: bool = False) -> bool:
    """An explicit ``suspend: false`` on an object stored suspended, by a person. Flux's
    apply of a Git manifest that says ``suspend: false`` is no decision to release: the
    gate keeps the object held (and never denies Flux's apply, which would stall the
    whole Kustomization)."""
    return not by_flux and suspend_value(incoming) is False and suspend_value(stored) is True


def hold_warning(kind: GatedKind, incoming: object, decision: GateDecision) -> str:
    if decision.reason is Reason.POLICY_UNREADABLE:
        problem = "; ".join(decision.desired.problems)
        return f"FluxUp holds {app_name(incoming)}: cannot read its gate policy ({problem})"
    if decision.reason is Reason.STORED_OBJECT_MISSING:
        return f"FluxUp holds {app_name(incoming)}: the request lacks the stored object"
    return (
        f"FluxUp holds {app_name(incoming)} {decision.desired.identity.describe()} "
        "until pre-upgrade snapshots are ready"
    )


MutationAction = Literal["allow", "hold", "bypass", "unsuspend"]


@dataclass(frozen=True)
class Mutation:
    """The mutating webhook's answer: JSON Patch operations, warnings, what it did."""

    patch: tuple[PatchOperation, ...]
    warnings: tuple[str, ...]
    action: MutationAction


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _set_annotations(incoming: object, values: Mapping[str, str]) -> list[PatchOperation]:
    current = get(incoming, "metadata", "annotations")
    if isinstance(current, Mapping):
        return [
            {"op": "add", "path": _pointer("metadata", "annotations", k), "value": v}
            for k, v in values.items()
            if current.get(k) != v
        ]
    if get_mapping(incoming, "metadata") is not None:
        return [{"op": "add", "path": "/metadata/annotations", "value": dict(values)}]
    return [{"op": "add", "path": "/metadata", "value": {"annotations": dict(values)}}]


def _remove_annotations(incoming: object, names: tuple[str, ...]) -> list[PatchOperation]:
    current = get_mapping(incoming, "metadata", "annotations") or {}
    return [
        {"op": "remove", "path": _pointer("metadata", "annotations", k)}
        for k in names
        if k in current
    ]


def _is_timestamp(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return "T" in text


def _held_since(held: str, incoming: object, stored: object, now: dt.datetime) -> str:
    """Keep the start of a hold while the held identity stays the same."""
    for obj in (incoming, stored):
        notes = annotations_of(obj)
        since = notes.get(ann.HELD_SINCE)
        if notes.get(ann.HELD) == held and since and _is_timestamp(since):
            return since
    return format_rfc3339(now)


def _range_warnings(kind: GatedKind, incoming: object, decision: GateDecision) -> tuple[str, ...]:
    if not decision.desired.ungated:
        return ()
    why = "; ".join(decision.desired.ungated)
    return (f"FluxUp cannot gate {app_name(incoming)} per version: {why}",)


def expected_binding(
    decision: GateDecision,
    incoming: Mapping[str, object],
    stored: Mapping[str, object] | None,
    by_flux: bool = False,
) -> str | None:
    """The ``fluxup.dev/bypassed`` binding ``incoming`` must carry (see
    :mod:`fluxup.logic.bypass`)."""
    deployed = decision.deployed
    running = deployed.candidates[0] if deployed is not None and deployed.candidates else None
    return determine_binding(incoming, stored, decision.desired.identity, decision.holds,
                             running, by_flux)


def bypass_applies(
    decision: GateDecision,
    incoming: Mapping[str, object],
    stored: Mapping[str, object] | None,
    by_flux: bool = False,
) -> bool:
    """A held identity is let through by the bypass on the object: only the one identity
    the bypass was bound to when it appeared."""
    if not decision.holds or bypass_reason(incoming) is None:
        return False
    binding = expected_binding(decision, incoming, stored, by_flux)
    return binding_covers(binding, decision.desired.identity)


def _binding_patch(incoming: Mapping[str, object], binding: str | None) -> list[PatchOperation]:
    if binding is None:
        return _remove_annotations(incoming, (ann.BYPASSED,))
    return _set_annotations(incoming, {ann.BYPASSED: binding})


def _stale_bypass_warning(
    incoming: Mapping[str, object], binding: str | None, decision: GateDecision
) -> tuple[str, ...]:
    if bypass_reason(incoming) is None:
        return ()
    bound = parse_binding(binding)
    what = bound.identity.describe() if bound is not None else "<nothing>"
    return (
        f"FluxUp's bypass on {app_name(incoming)} covers only {what}, not "
        f"{decision.desired.identity.describe()}; to release this version without "
        f"snapshots too, remove the annotation {ann.BYPASS} and set it again",
    )


def build_mutation(
    kind: GatedKind,
    decision: GateDecision,
    incoming: Mapping[str, object],
    stored: Mapping[str, object] | None,
    now: dt.datetime,
    by_flux: bool = False,
) -> Mutation:
    """The JSON Patch and warnings that enforce ``decision`` on ``incoming``; ``by_flux``:
    the request is Flux's apply (:func:`is_flux_apply`), which is held, never refused."""
    warnings = _range_warnings(kind, incoming, decision)
    binding = expected_binding(decision, incoming, stored, by_flux)
    bound = _binding_patch(incoming, binding)
    if not decision.holds:
        removals = _remove_annotations(incoming, (ann.HELD, ann.HELD_SINCE))
        return Mutation(tuple(removals + bound), warnings, "allow")
    bypass = bypass_reason(incoming)
    if bypass is not None and bypass_applies(decision, incoming, stored, by_flux):
        note = (
            f"FluxUp gate bypassed for {app_name(incoming)} "
            f"{decision.desired.identity.describe()}: {bypass.strip() or '<no reason given>'}"
        )
        removals = _remove_annotations(incoming, (ann.HELD, ann.HELD_SINCE))
        return Mutation(tuple(removals + bound), (*warnings, note), "bypass")
    warnings = (*warnings, *_stale_bypass_warning(incoming, binding, decision))
    warning = hold_warning(kind, incoming, decision)
    if is_deliberate_unsuspend(incoming, stored, by_flux):
        return Mutation(tuple(bound), (*warnings, warning), "unsuspend")
    held = decision.desired.identity.to_json()
    patch: list[PatchOperation] = list(bound)
    if suspend_value(incoming) is not True:
        if get_mapping(incoming, "spec") is not None:
            patch.append({"op": "add", "path": "/spec/suspend", "value": True})
        else:
            patch.append({"op": "add", "path": "/spec", "value": {"suspend": True}})
    since = _held_since(held, incoming, stored, now)
    patch += _set_annotations(incoming, {ann.HELD: held, ann.HELD_SINCE: since})
    return Mutation(tuple(patch), (*warnings, warning), "hold")
