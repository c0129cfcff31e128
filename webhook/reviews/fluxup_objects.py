"""Review of FluxUp's own objects (``fluxup.dev/v1alpha1`` ManagedApp, UpgradeRequest,
RollbackRequest): the checks CRD schemas cannot express, such as references into other
namespaces (refused unless the setting ``allow_cross_namespace_refs`` is on). Nothing is
mutated. Pure.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from fluxup.api.admission import AdmissionRequest
from fluxup.api.constants import GROUP as FLUXUP_GROUP
from fluxup.api.constants import MANAGED_APP, ROLLBACK_REQUEST, UPGRADE_REQUEST
from fluxup.logic.gate_validation import validate_fluxup_object
from fluxup.logic.release_record import operator_only_app_change
from webhook.reviews.base import GatePolicy, Reviewed, Stage, allow, deny

__all__ = ["GROUP", "KINDS", "review"]

GROUP: Final = FLUXUP_GROUP
KINDS: Final = (MANAGED_APP.kind, UPGRADE_REQUEST.kind, ROLLBACK_REQUEST.kind)


def review(
    request: AdmissionRequest, stage: Stage, policy: GatePolicy, now: dt.datetime
) -> Reviewed:
    """Validate one FluxUp object; the mutating stage allows everything unchanged."""
    if stage == "mutate" or request.get("subResource"):
        return allow(request, "not-gated")
    if request["operation"] not in ("CREATE", "UPDATE"):
        return allow(request, "not-gated")
    obj = request.get("object")
    if obj is None:
        return deny(request, "malformed", "request.object is missing", code=400)
    if request["kind"]["kind"] == MANAGED_APP.kind and (
        request["userInfo"].get("username") != policy.operator_username
    ):
        changed = operator_only_app_change(obj, request.get("oldObject"))
        if changed is not None:
            return deny(
                request, "OperatorOnlyAnnotation",
                f"ManagedApp {request.get('namespace', '')}/{request.get('name', '')}: only "
                f"FluxUp ({policy.operator_username}) may write the {changed}; it records "
                "which Helm release the app protects and what is approved. Leave it out "
                "of your manifests and patches.",
            )
    verdict = validate_fluxup_object(
        request["kind"]["kind"],
        obj,
        request.get("namespace", ""),
        policy.allow_cross_namespace_refs,
    )
    if not verdict.allowed:
        return deny(request, verdict.reason, verdict.message)
    return allow(request, "allow")
