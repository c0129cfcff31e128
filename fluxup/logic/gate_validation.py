"""The validating half of the gate (DESIGN.md §2, rule 7) and checks of FluxUp's own objects.

:func:`validate_gated_object` checks a managed HelmRelease/OCIRepository *after* mutation:
only the operator's user may add, change or remove ``fluxup.dev/approved``,
``fluxup.dev/released`` and ``fluxup.dev/image-paths`` or drop the ``fluxup.dev/managed-app``
label; an object the rules hold must stay suspended (unless a ``fluxup.dev/bypass`` covers
exactly its identity) and carry the held identity, and a bypass must carry the binding the
mutating webhook wrote (``fluxup.dev/bypassed``). :func:`validate_fluxup_object` checks
what CRD schemas cannot express (namespace-relative references, settings). Called by
``webhook/``. Pure; every denial message says what happened and how to proceed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fluxup.api import annotations as ann
from fluxup.api.constants import MANAGED_APP, ROLLBACK_REQUEST, UPGRADE_REQUEST
from fluxup.logic.admitted import Admission, Asker
from fluxup.logic.gate import GateDecision, bypass_applies, expected_binding
from fluxup.logic.gate_values import ValuePathError, get, get_str, parse_value_path
from fluxup.logic.identity import is_exact_version

__all__ = ["Verdict", "validate_fluxup_object", "validate_gated_object"]


@dataclass(frozen=True)
class Verdict:
    """A validating answer; ``reason`` names the rule (metrics label, response reason)."""

    allowed: bool
    reason: str
    message: str = ""
    warnings: tuple[str, ...] = ()


ALLOWED = Verdict(True, "Allowed")


def _operator_only_violation(admission: Admission) -> Verdict | None:
    incoming, stored, requester = admission.incoming, admission.stored, admission.requester
    new = incoming.operator_notes
    old = stored.operator_notes if stored is not None else {}
    for name in ann.OPERATOR_ONLY_ANNOTATIONS:
        if new.get(name) != old.get(name):
            verb = "remove" if name not in new else ("change" if name in old else "set")
            return Verdict(
                False,
                "OperatorOnlyAnnotation",
                f"{incoming.describe()}: only FluxUp ({requester.operator_username}) may set, "
                f"change or remove the annotation {name}; this request by "
                f"{requester.username or '<unknown user>'} would {verb} it. Leave it out of "
                "your manifests and patches: FluxUp writes it itself once the pre-upgrade "
                "snapshots are ready.",
            )
    if stored is not None and stored.managed and not incoming.managed:
        return Verdict(
            False,
            "ManagedLabelRemoved",
            f"{incoming.describe()}: removing the label {ann.MANAGED_APP_LABEL} would take it "
            f"out of FluxUp's upgrade gate; only FluxUp ({requester.operator_username}) may "
            f"do that. To stop managing the app, delete its ManagedApp ({stored.app}).",
        )
    return None


def _unsuspend_message(admission: Admission, decision: GateDecision) -> str:
    obj = admission.incoming
    namespace = obj.namespace or "<namespace>"
    follow = (
        f"UpgradeRequest {namespace}/{obj.upgrade_request}"
        if obj.upgrade_request
        else f"the UpgradeRequest of ManagedApp {obj.app} "
        f"(kubectl get upgraderequests -n {namespace})"
    )
    return (
        f"{obj.describe()} is held by FluxUp at "
        f"{decision.desired.identity.describe()} until its pre-upgrade snapshots are ready; "
        f"FluxUp un-suspends it itself when they are. Follow {follow}. To release it now "
        f'without snapshots, also set the annotation {ann.BYPASS}: "<reason>" (audited).'
    )


def validate_gated_object(admission: Admission, decision: GateDecision) -> Verdict:
    """Check a (mutated) managed object against rule 7 and the hold ``decision``."""
    if admission.requester.asker is Asker.OPERATOR:
        return ALLOWED
    violation = _operator_only_violation(admission)
    if violation is not None:
        return violation
    obj = admission.incoming
    binding = expected_binding(admission, decision)
    if obj.bypassed != binding:
        return Verdict(
            False,
            "BypassBindingMismatch",
            f"{obj.describe()}: annotation {ann.BYPASSED} must be "
            f"{binding!r} (FluxUp's mutating webhook writes it when {ann.BYPASS} is set). Do "
            "not edit it; if this keeps happening, check that FluxUp's "
            "MutatingWebhookConfiguration is installed.",
        )
    if not decision.holds:
        return ALLOWED
    if bypass_applies(admission, decision):
        # the mutating step already warned; the audit log has the user
        return Verdict(True, "Bypassed")
    if obj.suspend is not True:
        return Verdict(False, "HeldUnsuspend", _unsuspend_message(admission, decision))
    expected = decision.desired.identity.to_json()
    if obj.held != expected:
        return Verdict(
            False,
            "HeldMismatch",
            f"{obj.describe()}: annotation {ann.HELD} must be {expected} "
            f"(FluxUp's mutating webhook writes it), not {obj.held!r}. Do not edit it; if "
            "this keeps happening, check that FluxUp's MutatingWebhookConfiguration is "
            "installed.",
        )
    return ALLOWED


def _ref_namespace_problems(
    field: str, ref: object, namespace: str, allow_cross: bool
) -> list[str]:
    if allow_cross or not isinstance(ref, Mapping):
        return []
    ref_ns = ref.get("namespace")
    if isinstance(ref_ns, str) and ref_ns and ref_ns != namespace:
        return [
            f"{field}.namespace {ref_ns!r} is not this object's namespace {namespace!r}: "
            "FluxUp only manages objects in the ManagedApp's own namespace (drop the "
            "namespace, or enable the setting allow_cross_namespace_refs)"
        ]
    return []


def _value_path_problems(field: str, path: object) -> list[str]:
    if not isinstance(path, str):
        return []
    try:
        parse_value_path(path)
    except ValuePathError as exc:
        return [f"{field}: {exc}"]
    return []


def _managed_app_problems(obj: object, namespace: str, allow_cross: bool) -> list[str]:
    problems = _ref_namespace_problems(
        "spec.helmReleaseRef", get(obj, "spec", "helmReleaseRef"), namespace, allow_cross
    )
    pvcs = get(obj, "spec", "volumeSnapshots", "pvcs")
    for i, pvc in enumerate(pvcs if isinstance(pvcs, list) else []):
        problems += _ref_namespace_problems(
            f"spec.volumeSnapshots.pvcs[{i}]", pvc, namespace, allow_cross
        )
    images = get(obj, "spec", "versionPolicy", "images")
    for i, image in enumerate(images if isinstance(images, list) else []):
        problems += _value_path_problems(
            f"spec.versionPolicy.images[{i}].valuesPath", get(image, "valuesPath")
        )
    return problems


def _upgrade_request_problems(obj: object, namespace: str, allow_cross: bool) -> list[str]:
    problems = _ref_namespace_problems(
        "spec.managedAppRef", get(obj, "spec", "managedAppRef"), namespace, allow_cross
    )
    version = get(obj, "spec", "targetVersion")
    if isinstance(version, str) and version.strip() and not is_exact_version(version):
        problems.append(
            f"spec.targetVersion {version!r} is a range; an upgrade needs one exact "
            "version (e.g. 12.5.0) so its snapshots can be approved for exactly it"
        )
    images = get(obj, "spec", "targetImages")
    for i, image in enumerate(images if isinstance(images, list) else []):
        problems += _value_path_problems(
            f"spec.targetImages[{i}].valuesPath", get(image, "valuesPath")
        )
    return problems


def _rollback_request_problems(obj: object, namespace: str, allow_cross: bool) -> list[str]:
    problems: list[str] = []
    for field in ("upgradeRequestRef", "snapshotRef"):
        problems += _ref_namespace_problems(
            f"spec.{field}", get(obj, "spec", field), namespace, allow_cross
        )
    refs = [f for f in ("upgradeRequestRef", "snapshotRef") if get(obj, "spec", f) is not None]
    if len(refs) != 1:
        problems.append("set exactly one of spec.upgradeRequestRef or spec.snapshotRef")
    return problems


_CHECKS = {
    MANAGED_APP.kind: _managed_app_problems,
    UPGRADE_REQUEST.kind: _upgrade_request_problems,
    ROLLBACK_REQUEST.kind: _rollback_request_problems,
}


def validate_fluxup_object(
    kind: str, obj: Mapping[str, object], namespace: str, allow_cross_namespace_refs: bool
) -> Verdict:
    """Checks of ManagedApp/UpgradeRequest/RollbackRequest that CRD schemas cannot express."""
    check = _CHECKS.get(kind)
    if check is None:
        return ALLOWED
    ns = namespace or get_str(obj, "metadata", "namespace") or ""
    problems = check(obj, ns, allow_cross_namespace_refs)
    if not problems:
        return ALLOWED
    name = get_str(obj, "metadata", "name") or "<unnamed>"
    return Verdict(False, "InvalidReference", f"{kind} {ns}/{name}: " + "; ".join(problems))
