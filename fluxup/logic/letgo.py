"""What deleting a ManagedApp undoes: FluxUp lets go of the app cleanly (DESIGN.md §2, rule 5).

The ManagedApp's finalizer (:mod:`fluxup.reconcile.managedapp_finalizer`) waits until no
request of the app is in flight, then removes what FluxUp wrote: line 2's label and
annotations on the ManagedApp (so the release-record webhook no longer finds it), the
``fluxup.dev/managed-app`` label and FluxUp's annotations on the app's HelmRelease and
OCIRepository (so line 1 no longer sees them) and, where the gate held one, the hold
itself (``spec.suspend`` back to ``false``; a suspend a person or a rollback set stays).
Nothing stays held with nobody left to release it. Pure; these functions only build the
patches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fluxup.api import annotations as ann
from fluxup.logic.bypass import BYPASS_RECORDED
from fluxup.logic.gate_values import annotations_of, get, labels_of
from fluxup.logic.release_record import parse_release_gate

__all__ = [
    "APP_FINALIZER",
    "FLUX_OBJECT_ANNOTATIONS",
    "SUSPENDED_BY_ROLLBACK",
    "build_app_release_patch",
    "build_flux_release_patch",
    "is_in_flight_for",
    "namespace_still_needed",
]

#: The finalizer FluxUp keeps on every ManagedApp.
APP_FINALIZER = "fluxup.dev/managedapp"

#: On a Flux object a rollback suspended (see :mod:`fluxup.reconcile.rollback_steps`).
SUSPENDED_BY_ROLLBACK = "fluxup.dev/suspended-by-rollback"

#: FluxUp's annotations on a HelmRelease/OCIRepository. ``fluxup.dev/bypass`` is a
#: person's (and maybe in Git): it stays, harmless once the object is not gated.
FLUX_OBJECT_ANNOTATIONS = (
    ann.HELD, ann.HELD_SINCE, ann.APPROVED, ann.RELEASED, ann.IMAGE_PATHS,
    ann.UPGRADE_REQUEST, ann.BYPASSED, BYPASS_RECORDED,
)

_TERMINAL = frozenset({"Succeeded", "Failed"})


def build_flux_release_patch(obj: Mapping[str, Any], app: str) -> dict[str, Any] | None:
    """The merge patch that takes a HelmRelease/OCIRepository out of FluxUp's gate for
    ManagedApp ``app``; ``None`` when there is nothing to do or the object belongs to
    another app (a shared OCIRepository labelled for it stays as it is)."""
    owner = labels_of(obj).get(ann.MANAGED_APP_LABEL)
    if owner is not None and owner != app:
        return None
    notes = annotations_of(obj)
    patch: dict[str, Any] = {}
    if owner is not None:
        patch.setdefault("metadata", {})["labels"] = {ann.MANAGED_APP_LABEL: None}
    gone = {name: None for name in FLUX_OBJECT_ANNOTATIONS if name in notes}
    if gone:
        patch.setdefault("metadata", {})["annotations"] = gone
    held_by_gate = ann.HELD in notes and SUSPENDED_BY_ROLLBACK not in notes
    if held_by_gate and get(obj, "spec", "suspend") is True:
        patch["spec"] = {"suspend": False}
    return patch or None


def build_app_release_patch(app_obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch removing line 2's label and annotations from the ManagedApp."""
    patch: dict[str, Any] = {}
    if ann.RELEASE_KEY_LABEL in labels_of(app_obj):
        patch.setdefault("metadata", {})["labels"] = {ann.RELEASE_KEY_LABEL: None}
    notes = annotations_of(app_obj)
    gone = {n: None for n in (ann.RELEASE_GATE, ann.RELEASE_APPROVED) if n in notes}
    if gone:
        patch.setdefault("metadata", {})["annotations"] = gone
    return patch or None


def namespace_still_needed(
    storage_namespace: str, app_obj: Mapping[str, Any], apps: Iterable[Mapping[str, Any]]
) -> bool:
    """Another ManagedApp (not being deleted) records a release in ``storage_namespace``,
    so its ``fluxup.dev/release-records`` label must stay."""
    me = (get(app_obj, "metadata", "namespace"), get(app_obj, "metadata", "name"))
    for other in apps:
        if (get(other, "metadata", "namespace"), get(other, "metadata", "name")) == me:
            continue
        if get(other, "metadata", "deletionTimestamp"):
            continue
        gate = parse_release_gate(other)
        if gate is not None and gate.storage_namespace == storage_namespace:
            return True
    return False


def is_in_flight_for(request: Mapping[str, Any], app: str) -> bool:
    """``request`` (an UpgradeRequest or RollbackRequest) names ManagedApp ``app`` — by
    ``spec.managedAppRef`` or, for a rollback, the app it resolved — and has not ended."""
    names = {get(request, "spec", "managedAppRef", "name"), get(request, "status", "managedApp")}
    if app not in names:
        return False
    return get(request, "status", "phase") not in _TERMINAL
