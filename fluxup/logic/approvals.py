"""Approvals live exactly as long as their request (DESIGN.md §2, rule 2).

The operator approves one identity for one request (``fluxup.dev/approved`` on a
HelmRelease/OCIRepository, ``fluxup.dev/release-approved`` on the ManagedApp for line 2),
each naming the request as ``<Kind>/<namespace>/<name>``. The request removes them when
it ends (:mod:`fluxup.reconcile.approvals`); the ManagedApp reconciler re-checks on every
pass and timer tick, so an approval whose request ended or is gone — a crash between two
writes, a request deleted while the operator was down — is removed too and can never
let a later apply through. This module decides, purely, from the request objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from fluxup.logic.identity import parse_approval

__all__ = ["RequestState", "approval_outlived", "determine_request_state"]

_TERMINAL = frozenset({"Succeeded", "Failed"})


class RequestState(StrEnum):
    """Where the request an approval names stands."""

    ACTIVE = "Active"
    #: Succeeded, Failed, or being deleted (its finalizer is undoing what it holds)
    ENDED = "Ended"
    GONE = "Gone"


def determine_request_state(request: Mapping[str, object] | None) -> RequestState:
    """The state of an UpgradeRequest/RollbackRequest object (``None``: not found)."""
    if request is None:
        return RequestState.GONE
    meta = request.get("metadata")
    if isinstance(meta, Mapping) and meta.get("deletionTimestamp"):
        return RequestState.ENDED
    status = request.get("status")
    phase = status.get("phase") if isinstance(status, Mapping) else None
    return RequestState.ENDED if phase in _TERMINAL else RequestState.ACTIVE


def approval_outlived(text: str | None, state: RequestState | None) -> bool:
    """True when an approval annotation (``text``) must be removed: it names no request
    (unreadable, or a bare identity from before approvals were bound) or its request
    (``state``, looked up by the caller from :func:`parse_approval`'s ``request``) has
    ended or is gone. ``None``/empty text: nothing to remove."""
    if not text:
        return False
    if parse_approval(text) is None:
        return True
    return state is not RequestState.ACTIVE
