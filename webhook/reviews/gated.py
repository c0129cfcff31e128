"""The review shared by the gated Flux kinds (HelmRelease, OCIRepository).

The request is parsed once into typed views (:func:`fluxup.logic.admitted.parse_admission`).
Mutating stage: evaluate the rules and return the JSON Patch that holds the object
(``spec.suspend`` plus ``fluxup.dev/held``/``held-since``) with a warning. Validating
stage: the rules again on the mutated object, plus the operator-only annotations and
label. Pure; DELETE/CONNECT and subresources are not gated.
"""

from __future__ import annotations

import datetime as dt

from fluxup.api.admission import AdmissionRequest
from fluxup.logic.admitted import build_requester, parse_admission
from fluxup.logic.gate import build_mutation, evaluate
from fluxup.logic.gate_validation import validate_gated_object
from fluxup.logic.identity import GatedKind
from webhook.reviews.base import GatePolicy, Reviewed, Stage, allow, deny

__all__ = ["review_gated"]


def review_gated(
    kind: GatedKind,
    request: AdmissionRequest,
    stage: Stage,
    policy: GatePolicy,
    now: dt.datetime,
) -> Reviewed:
    operation = request["operation"]
    if request.get("subResource") or operation not in ("CREATE", "UPDATE"):
        return allow(request, "not-gated")
    incoming = request.get("object")
    if incoming is None:
        return deny(
            request, "malformed", f"{operation} of a {kind.value} without request.object",
            code=400,
        )
    stored = request.get("oldObject") if operation == "UPDATE" else None
    requester = build_requester(
        request.get("userInfo", {}).get("username", ""), policy.operator_username,
        request.get("options"),
    )
    admission = parse_admission(
        kind, incoming, stored, "CREATE" if operation == "CREATE" else "UPDATE", requester,
        request.get("dryRun", False),
    )
    decision = evaluate(admission)
    if stage == "mutate":
        mutation = build_mutation(admission, decision, incoming, now)
        return allow(request, mutation.action, patch=mutation.patch, warnings=mutation.warnings)
    verdict = validate_gated_object(admission, decision)
    if not verdict.allowed:
        return deny(request, verdict.reason, verdict.message)
    label = "bypass" if verdict.reason == "Bypassed" else decision.outcome.value
    return allow(request, label, warnings=verdict.warnings)
