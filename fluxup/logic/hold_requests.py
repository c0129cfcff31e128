"""Which UpgradeRequest handles a hold of the admission gate (line 1), decided purely.

The operator gives every hold a request (``origin: git``) with a deterministic name, so a
crash or a repeated pass never makes a second one. :func:`determine_hold_handling` looks
at the app's requests and says whether one in flight already targets the held identity,
whether one that targeted it has ended (then FluxUp does not start the same upgrade
again on its own: the release stays held, the ManagedApp says which request ended and
what to do — one clear outcome whatever the request's origin), or whether a new request
must be created (:func:`build_hold_request`). Called by :mod:`fluxup.reconcile.holds`.
Pure; no I/O.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fluxup.api import annotations as ann
from fluxup.api.constants import API_VERSION, UPGRADE_REQUEST
from fluxup.api.upgraderequest import TERMINAL_UPGRADE_PHASES
from fluxup.logic.identity import Identity
from fluxup.logic.snapshots import label_safe

__all__ = [
    "HoldHandling",
    "HoldState",
    "build_hold_request",
    "build_hold_request_name",
    "determine_hold_handling",
    "request_targets_hold",
]

_TERMINAL = frozenset(p.value for p in TERMINAL_UPGRADE_PHASES)


def build_hold_request_name(app: str, held: Identity) -> str:
    digest = hashlib.sha256(held.to_json().encode()).hexdigest()[:10]
    return f"{app[:40].rstrip('-.')}-git-{digest}"


def request_targets_hold(request: Mapping[str, Any], held: Identity, is_oci: bool) -> bool:
    """The request upgrades to exactly what is held (chart version, else image tags)."""
    status_target = (request.get("status") or {}).get("targetIdentity") or {}
    spec = request.get("spec") or {}
    version = status_target.get("version") or spec.get("targetVersion")
    if held.chart is not None:
        return bool(version) and str(version).lstrip("v=") == held.chart.lstrip("v=")
    images = {
        i.get("valuesPath"): i.get("tag")
        for i in (status_target.get("images") or spec.get("targetImages") or [])
    }
    return bool(held.images) and not is_oci and all(
        images.get(path) == tag for path, tag in held.images
    )


class HoldState(enum.Enum):
    #: A request in flight handles the hold.
    IN_FLIGHT = "in-flight"
    #: A request for the held identity has ended; FluxUp leaves the hold to the user.
    ENDED = "ended"
    #: No request ever handled it: create one.
    MISSING = "missing"


@dataclass(frozen=True)
class HoldHandling:
    state: HoldState
    request: str
    message: str = ""


def _started_at(request: Mapping[str, Any]) -> str:
    status = request.get("status") or {}
    return str(status.get("completedAt") or status.get("startedAt") or "")


def _cancelled(last_upgrade: Mapping[str, Any] | None, held: Identity) -> str | None:
    """The request deleted in flight for ``held`` that ``status.lastUpgrade`` records."""
    last = last_upgrade or {}
    if last.get("phase") != "Failed" or last.get("completedAt") is None:
        return None
    to = str(last.get("toVersion") or "").lstrip("v=")
    if held.chart is None or to != held.chart.lstrip("v="):
        return None
    return str(last.get("upgradeRequest"))


def determine_hold_handling(
    requests: Iterable[Mapping[str, Any]],
    app: str,
    held: Identity,
    is_oci: bool,
    last_upgrade: Mapping[str, Any] | None = None,
) -> HoldHandling:
    """How the hold of ``held`` on ``app`` is handled, from the app's requests and its
    ``status.lastUpgrade`` (which remembers a request deleted before it finished)."""
    ended: list[Mapping[str, Any]] = []
    for request in requests:
        if ((request.get("spec") or {}).get("managedAppRef") or {}).get("name") != app:
            continue
        if not request_targets_hold(request, held, is_oci):
            continue
        meta = request.get("metadata") or {}
        phase = (request.get("status") or {}).get("phase")
        if phase not in _TERMINAL and not meta.get("deletionTimestamp"):
            return HoldHandling(HoldState.IN_FLIGHT, str(meta.get("name")))
        if phase == "Failed":
            ended.append(request)
    names = {str((r.get("metadata") or {}).get("name")) for r in ended}
    cancelled = _cancelled(last_upgrade, held)
    if cancelled and cancelled not in names:
        return HoldHandling(
            HoldState.ENDED,
            cancelled,
            f"UpgradeRequest {cancelled} for {held.describe()} was deleted before it "
            "finished; FluxUp keeps holding it: create a new UpgradeRequest to try again, "
            "or change Git back",
        )
    if ended:
        last = max(ended, key=_started_at)
        name = str((last.get("metadata") or {}).get("name"))
        why = (last.get("status") or {}).get("message") or "it failed"
        return HoldHandling(
            HoldState.ENDED,
            name,
            f"UpgradeRequest {name} for {held.describe()} failed ({why}); FluxUp keeps "
            "holding it: create a new UpgradeRequest to try again, or change Git back",
        )
    return HoldHandling(HoldState.MISSING, build_hold_request_name(app, held))


def build_hold_request(app: str, namespace: str, held: Identity) -> dict[str, Any]:
    """The UpgradeRequest (``origin: git``) that releases ``held`` after snapshots."""
    spec: dict[str, Any] = {"managedAppRef": {"name": app}, "origin": "git"}
    if held.chart is not None:
        spec["targetVersion"] = held.chart
    images = [{"valuesPath": p, "tag": t} for p, t in held.images if t is not None]
    if images:
        spec["targetImages"] = images
    return {
        "apiVersion": API_VERSION,
        "kind": UPGRADE_REQUEST.kind,
        "metadata": {
            "name": build_hold_request_name(app, held),
            "namespace": namespace,
            "labels": {ann.MANAGED_APP_LABEL: label_safe(app)},
        },
        "spec": spec,
    }
