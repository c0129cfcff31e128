"""The gate's rules (DESIGN.md §2), table-driven: one row per rule and edge.

Every row runs the whole admission path on plain objects: evaluate → mutating patch
(applied with jsonpatch, as the API server would) → validation of the mutated object.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonpatch
import pytest

from fluxup.api import annotations as ann
from fluxup.logic.admitted import build_requester, is_flux_apply, parse_admission
from fluxup.logic.bypass import Binding, build_binding, parse_binding
from fluxup.logic.gate import (
    Outcome,
    Reason,
    build_mutation,
    evaluate,
    format_rfc3339,
)
from fluxup.logic.gate_validation import validate_fluxup_object, validate_gated_object
from fluxup.logic.identity import GatedKind, Identity, build_approval, parse_identity

HR = GatedKind.HELM_RELEASE
OCI = GatedKind.OCI_REPOSITORY
OPERATOR = "system:serviceaccount:fluxup-system:fluxup-operator"
FLUX = "system:serviceaccount:flux-system:kustomize-controller"
NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
#: A request that names no user: neither Flux's apply nor the operator's.
UNNAMED = build_requester("", OPERATOR)
EARLIER = "2025-03-01T11:00:00Z"
ABSENT = object()


#: Where the fixtures' charts come from, as the identity names it.
HR_SOURCE = "chart:app@/apps/"
OCI_SOURCE = "oci:oci://registry/charts/app||"
CHART_REF_SOURCE = "chartRef:OCIRepository/apps/my-app"


def ident(chart: str | None = None, *, source: str | None = HR_SOURCE,
          extras: dict[str, str | None] | None = None, **images: str | None) -> str:
    """The identity JSON the gate writes for the fixtures: chart, images at their paths
    and, beside each ``….tag``, the repository/registry/digest (absent here: ``None``)."""
    paths = {k.replace("_", "."): v for k, v in images.items()}
    side = {f"{p.rsplit('.', 1)[0]}.{s}": None
            for p in paths if p.endswith(".tag") for s in ("digest", "registry", "repository")}
    side.update(extras or {})
    return Identity(chart, tuple(paths.items()), source, tuple(side.items())).to_json()


def oident(chart: str) -> str:
    return ident(chart, source=OCI_SOURCE)


REQUEST = "UpgradeRequest/apps/my-app-12-5-0"


def approval(identity: str, request: str = REQUEST) -> str:
    """``fluxup.dev/approved`` as the operator writes it: the identity bound to a request."""
    return build_approval(identity, request)


def hr(
    version: Any = "12.4.0",
    *,
    suspend: Any = ABSENT,
    notes: dict[str, str] | None = None,
    managed: bool = True,
    history: str | None = None,
    last_applied: str | None = None,
    values: dict[str, Any] | None = None,
    paths: list[str] | None = None,
    chart_ref: bool = False,
) -> dict[str, Any]:
    annotations = dict(notes or {})
    if paths is not None:
        annotations[ann.IMAGE_PATHS] = json.dumps(paths)
    labels = {ann.MANAGED_APP_LABEL: "my-app"} if managed else {}
    spec: dict[str, Any] = {"interval": "10m"}
    if chart_ref:
        spec["chartRef"] = {"kind": "OCIRepository", "name": "my-app"}
    else:
        spec["chart"] = {"spec": {"chart": "app", "version": version}}
    if suspend is not ABSENT:
        spec["suspend"] = suspend
    if values is not None:
        spec["values"] = values
    obj: dict[str, Any] = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "my-app", "namespace": "apps", "labels": labels},
        "spec": spec,
    }
    if annotations:
        obj["metadata"]["annotations"] = annotations
    if history is not None:
        obj["status"] = {"history": [{"chartVersion": history, "status": "deployed"}]}
    if last_applied is not None:
        obj["status"] = {"lastAppliedRevision": last_applied}
    return obj


def oci(
    ref: dict[str, str], *, revision: str | None = None, suspend: Any = ABSENT,
    notes: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"url": "oci://registry/charts/app", "ref": ref}
    if suspend is not ABSENT:
        spec["suspend"] = suspend
    obj: dict[str, Any] = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "my-app", "namespace": "apps",
                     "labels": {ann.MANAGED_APP_LABEL: "my-app"}},
        "spec": spec,
    }
    if notes:
        obj["metadata"]["annotations"] = dict(notes)
    if revision is not None:
        obj["status"] = {"artifact": {"revision": revision}}
    return obj


def _protected_value(name: str, version: str) -> str:
    if name == ann.IMAGE_PATHS:
        return json.dumps([f"image{version.replace('.', '')}.tag"])
    if name == ann.APPROVED:
        return approval(ident(version))
    return ident(version)


HELD_1250 = {ann.HELD: ident("12.5.0"), ann.HELD_SINCE: EARLIER}
DEPLOYED = "12.4.0"


@dataclass
class Case:
    id: str
    incoming: dict[str, Any]
    stored: dict[str, Any] | None
    outcome: Outcome
    reason: Reason
    action: str  # mutation action: allow | hold | bypass | unsuspend
    allowed: bool = True  # validating verdict on the mutated object
    deny_reason: str = ""
    user: str = FLUX
    kind: GatedKind = HR
    operation: Literal["CREATE", "UPDATE"] = "UPDATE"
    suspended: bool | None = None  # expected spec.suspend after mutation (None: absent)
    held: str | None = None  # expected fluxup.dev/held after mutation
    held_since: str | None = None
    warning: str | None = None  # substring of some warning
    message: str | None = None  # substring of the denial message
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    # Rule 1/4: first install — CREATE without any released identity passes.
    Case("create-first-install", hr("12.5.0"), None, Outcome.ALLOW, Reason.FIRST_INSTALL,
         "allow", operation="CREATE"),
    Case("create-ignores-client-status", hr("12.5.0", history="12.4.0"), None, Outcome.ALLOW,
         Reason.FIRST_INSTALL, "allow", operation="CREATE"),
    Case("create-with-released-by-operator-is-gated",
         hr("12.5.0", notes={ann.RELEASED: ident("12.4.0")}), None, Outcome.HOLD,
         Reason.NOT_APPROVED, "hold", operation="CREATE", user=OPERATOR, suspended=True,
         held=ident("12.5.0"), held_since=format_rfc3339(NOW)),
    Case("update-never-released", hr("12.5.0"), hr("12.4.0"), Outcome.ALLOW,
         Reason.FIRST_INSTALL, "allow"),
    # Rule 2/3: deployed from status (v2 history, v2beta1 lastAppliedRevision) or released.
    Case("unchanged-v2-history", hr("12.4.0"), hr("12.4.0", history="12.4.0"), Outcome.ALLOW,
         Reason.UNCHANGED, "allow"),
    Case("unchanged-v2beta1-last-applied", hr("12.4.0"), hr("12.4.0", last_applied="12.4.0"),
         Outcome.ALLOW, Reason.UNCHANGED, "allow"),
    Case("unchanged-released", hr("12.4.0", notes={ann.RELEASED: ident("12.4.0")}),
         hr("12.4.0", notes={ann.RELEASED: ident("12.4.0")}), Outcome.ALLOW, Reason.UNCHANGED,
         "allow"),
    Case("v-prefix-is-the-same-version", hr("v12.4.0"), hr("12.4.0", history="12.4.0"),
         Outcome.ALLOW, Reason.UNCHANGED, "allow"),
    Case("deployed-from-old-object-not-incoming-status",
         hr("12.5.0", history="12.5.0"), hr("12.4.0", history="12.4.0"), Outcome.HOLD,
         Reason.NOT_APPROVED, "hold", suspended=True, held=ident("12.5.0")),
    # Rule 5: hold — patch, annotations and warning.
    Case("hold-chart-change", hr("12.5.0"), hr("12.4.0", history=DEPLOYED), Outcome.HOLD,
         Reason.NOT_APPROVED, "hold", suspended=True, held=ident("12.5.0"),
         held_since=format_rfc3339(NOW),
         warning="FluxUp holds my-app 12.5.0 until pre-upgrade snapshots are ready"),
    Case("hold-v2beta1", hr("12.5.0"), hr("12.4.0", last_applied=DEPLOYED), Outcome.HOLD,
         Reason.NOT_APPROVED, "hold", suspended=True, held=ident("12.5.0")),
    Case("hold-downgrade-too", hr("12.3.0"), hr("12.4.0", history=DEPLOYED), Outcome.HOLD,
         Reason.NOT_APPROVED, "hold", suspended=True, held=ident("12.3.0")),
    Case("hold-when-suspend-already-true", hr("12.5.0", suspend=True),
         hr("12.4.0", history=DEPLOYED), Outcome.HOLD, Reason.NOT_APPROVED, "hold",
         suspended=True, held=ident("12.5.0")),
    Case("hold-git-manifest-with-explicit-false", hr("12.5.0", suspend=False),
         hr("12.4.0", history=DEPLOYED), Outcome.HOLD, Reason.NOT_APPROVED, "hold",
         suspended=True, held=ident("12.5.0")),
    # Rule 6: repeated applies stay held; held-since is kept.
    Case("reapply-drops-suspend-and-annotations", hr("12.5.0"),
         hr("12.5.0", suspend=True, history=DEPLOYED, notes=HELD_1250), Outcome.HOLD,
         Reason.NOT_APPROVED, "hold", suspended=True, held=ident("12.5.0"), held_since=EARLIER),
    Case("reapply-keeps-annotations-drops-suspend", hr("12.5.0", notes=HELD_1250),
         hr("12.5.0", suspend=True, history=DEPLOYED, notes=HELD_1250), Outcome.HOLD,
         Reason.NOT_APPROVED, "hold", suspended=True, held=ident("12.5.0"), held_since=EARLIER),
    Case("reapply-fully-held-is-noop", hr("12.5.0", suspend=True, notes=HELD_1250),
         hr("12.5.0", suspend=True, history=DEPLOYED, notes=HELD_1250), Outcome.HOLD,
         Reason.NOT_APPROVED, "hold", suspended=True, held=ident("12.5.0"), held_since=EARLIER,
         extra={"patch_len": 0}),
    Case("new-version-while-held-restarts-since", hr("12.6.0"),
         hr("12.5.0", suspend=True, history=DEPLOYED, notes=HELD_1250), Outcome.HOLD,
         Reason.NOT_APPROVED, "hold", suspended=True, held=ident("12.6.0"),
         held_since=format_rfc3339(NOW)),
    # The operator records what runs (``released``, with its chart source) at rest.
    Case("revert-to-deployed-passes-and-clears-held",
         hr("12.4.0", notes={ann.RELEASED: ident("12.4.0")}),
         hr("12.5.0", suspend=True, history=DEPLOYED,
            notes={**HELD_1250, ann.RELEASED: ident("12.4.0")}), Outcome.ALLOW,
         Reason.UNCHANGED, "allow", held=None),
    # Held, and nothing says where the running chart came from: the safe answer.
    Case("revert-with-unknown-deployed-source-holds", hr("12.4.0"),
         hr("12.5.0", suspend=True, history=DEPLOYED, notes=HELD_1250), Outcome.HOLD,
         Reason.NOT_APPROVED, "hold", suspended=True, held=ident("12.4.0")),
    # Rule 4: approved by the operator.
    Case("approved-by-operator-passes", hr("12.5.0", suspend=True,
         notes={**HELD_1250, ann.APPROVED: approval(ident("12.5.0"))}),
         hr("12.5.0", suspend=True, history=DEPLOYED, notes=HELD_1250), Outcome.ALLOW,
         Reason.APPROVED, "allow", user=OPERATOR, suspended=True, held=None),
    Case("approved-then-unsuspend-by-anyone", hr("12.5.0", suspend=False,
         notes={ann.APPROVED: approval(ident("12.5.0"))}),
         hr("12.5.0", suspend=True, history=DEPLOYED,
            notes={ann.APPROVED: approval(ident("12.5.0"))}),
         Outcome.ALLOW, Reason.APPROVED, "allow", suspended=False),
    Case("approved-other-version-holds",
         hr("12.6.0", notes={ann.APPROVED: approval(ident("12.5.0"))}),
         hr("12.5.0", history=DEPLOYED, notes={ann.APPROVED: approval(ident("12.5.0"))}),
         Outcome.HOLD, Reason.NOT_APPROVED, "hold", suspended=True, held=ident("12.6.0")),
    # An approval is bound to one request: without one it approves nothing.
    Case("approved-bare-identity-holds", hr("12.5.0", notes={ann.APPROVED: ident("12.5.0")}),
         hr("12.4.0", history=DEPLOYED, notes={ann.APPROVED: ident("12.5.0")}), Outcome.HOLD,
         Reason.NOT_APPROVED, "hold", suspended=True, held=ident("12.5.0")),
    *[
        Case(f"approved-for-{bad or 'empty'}-request-holds",
             hr("12.5.0", notes={ann.APPROVED: json.dumps(
                 {"identity": json.loads(ident("12.5.0")), "request": bad})}),
             hr("12.4.0", history=DEPLOYED), Outcome.HOLD, Reason.NOT_APPROVED, "hold",
             suspended=True, held=ident("12.5.0"), user=OPERATOR)
        for bad in ("", "apps/u1", "Pod/apps/u1", "UpgradeRequest/apps/", "UpgradeRequest//u")
    ],
    Case("approved-rollback-request-passes",
         hr("12.4.0", notes={ann.APPROVED: approval(ident("12.4.0"),
                                                    "RollbackRequest/apps/rb")}),
         hr("12.5.0", suspend=True, history="12.5.0", notes=HELD_1250), Outcome.ALLOW,
         Reason.APPROVED, "allow", user=OPERATOR, held=None),
    Case("approved-malformed-holds", hr("12.5.0", notes={ann.APPROVED: "yes"}),
         hr("12.4.0", history=DEPLOYED, notes={ann.APPROVED: "yes"}), Outcome.HOLD,
         Reason.NOT_APPROVED, "hold", suspended=True),
    # Rule 7: deliberate un-suspend denied unless bypass; operator may.
    Case("manual-unsuspend-denied", hr("12.5.0", suspend=False, notes=HELD_1250),
         hr("12.5.0", suspend=True, history=DEPLOYED, notes=HELD_1250), Outcome.HOLD,
         Reason.NOT_APPROVED, "unsuspend", allowed=False, deny_reason="HeldUnsuspend",
         user="alice", suspended=False, message="fluxup.dev/bypass"),
    Case("manual-unsuspend-names-upgrade-request",
         hr("12.5.0", suspend=False, notes={**HELD_1250, ann.UPGRADE_REQUEST: "my-app-12-5-0"}),
         hr("12.5.0", suspend=True, history=DEPLOYED,
            notes={**HELD_1250, ann.UPGRADE_REQUEST: "my-app-12-5-0"}),
         Outcome.HOLD, Reason.NOT_APPROVED, "unsuspend", allowed=False,
         deny_reason="HeldUnsuspend", user="alice", message="UpgradeRequest apps/my-app-12-5-0"),
    Case("manual-unsuspend-with-bypass", hr("12.5.0", suspend=False,
         notes={**HELD_1250, ann.BYPASS: "incident 42"}),
         hr("12.5.0", suspend=True, history=DEPLOYED, notes=HELD_1250), Outcome.HOLD,
         Reason.NOT_APPROVED, "bypass", user="alice", suspended=False, warning="incident 42"),
    Case("bypass-stays-unsuspended-on-reapply",
         hr("12.5.0", suspend=False, notes={**HELD_1250, ann.BYPASS: "incident 42"}),
         hr("12.5.0", suspend=False, history=DEPLOYED, notes={
             **HELD_1250, ann.BYPASS: "x",
             ann.BYPASSED: build_binding(parse_identity(ident("12.5.0")), used=True)}),
         Outcome.HOLD, Reason.NOT_APPROVED, "bypass", suspended=False),
    Case("operator-may-unsuspend", hr("12.5.0", suspend=False, notes=HELD_1250),
         hr("12.5.0", suspend=True, history=DEPLOYED, notes=HELD_1250), Outcome.HOLD,
         Reason.NOT_APPROVED, "unsuspend", user=OPERATOR, suspended=False),
    Case("held-annotation-tampered-denied", hr("12.5.0", suspend=True, notes={
         ann.HELD: ident("9.9.9"), ann.HELD_SINCE: EARLIER}),
         hr("12.5.0", suspend=True, history=DEPLOYED, notes=HELD_1250), Outcome.HOLD,
         Reason.NOT_APPROVED, "hold", suspended=True, held=ident("12.5.0")),
    # Rule 7: operator-only annotations and the label.
    *[
        Case(f"{verb}-{name}-by-user-denied", hr("12.4.0", notes=new), hr(
             "12.4.0", history=DEPLOYED, notes=old), Outcome.ALLOW, Reason.UNCHANGED, "allow",
             allowed=False, deny_reason="OperatorOnlyAnnotation", user="alice",
             message=f"only FluxUp ({OPERATOR}) may set, change or remove the annotation {name}")
        for name in ann.OPERATOR_ONLY_ANNOTATIONS
        for verb, old, new in [
            ("set", {}, {name: _protected_value(name, "12.4.0")}),
            ("change", {name: _protected_value(name, "1.0.0")},
             {name: _protected_value(name, "12.4.0")}),
            ("remove", {name: _protected_value(name, "12.4.0")}, {}),
        ]
    ],
    Case("image-paths-change-by-user-denied", hr("12.4.0", paths=[]), hr(
         "12.4.0", history=DEPLOYED, paths=["image.tag"]), Outcome.ALLOW, Reason.UNCHANGED,
         "allow", allowed=False, deny_reason="OperatorOnlyAnnotation", user="alice"),
    Case("approved-set-by-operator-allowed",
         hr("12.4.0", notes={ann.APPROVED: approval(ident("1"))}),
         hr("12.4.0", history=DEPLOYED), Outcome.ALLOW, Reason.UNCHANGED, "allow",
         user=OPERATOR),
    Case("create-with-approved-by-user-denied",
         hr("12.5.0", notes={ann.APPROVED: approval(ident("1"))}),
         None, Outcome.ALLOW, Reason.FIRST_INSTALL, "allow", operation="CREATE",
         allowed=False, deny_reason="OperatorOnlyAnnotation", user="alice"),
    Case("label-removed-by-user-denied", hr("12.4.0", managed=False),
         hr("12.4.0", history=DEPLOYED), Outcome.ALLOW, Reason.UNCHANGED, "allow",
         allowed=False, deny_reason="ManagedLabelRemoved", user="alice",
         message="delete its ManagedApp"),
    Case("label-removed-by-operator-allowed", hr("12.4.0", managed=False),
         hr("12.4.0", history=DEPLOYED), Outcome.ALLOW, Reason.UNCHANGED, "allow",
         user=OPERATOR),
    # Rule 8: ranges pass (chart ranges, OCI semver, floating tags).
    *[
        # line 1 compares the chart source and images; line 2 gates the resolved version
        Case(f"range-{v}-passes", hr(v), hr("12.4.0", history=DEPLOYED), Outcome.ALLOW,
             Reason.UNCHANGED, "allow", warning="cannot gate my-app per version")
        for v in ("12.x", ">=12", "^1.2", "~1.2", "*")
    ],
    Case("range-chart-still-gates-images",
         hr("12.x", values={"image": {"tag": "2.0"}}, paths=["image.tag"]),
         hr("12.x", history=DEPLOYED, values={"image": {"tag": "1.0"}}, paths=["image.tag"]),
         Outcome.HOLD, Reason.NOT_APPROVED, "hold", suspended=True,
         held=ident(None, image_tag="2.0"), warning="FluxUp holds my-app image.tag=2.0"),
    # Images at value paths.
    Case("image-change-holds",
         hr(values={"image": {"tag": "1.1"}}, paths=["image.tag"]),
         hr(history=DEPLOYED, values={"image": {"tag": "1.0"}}, paths=["image.tag"]),
         Outcome.HOLD, Reason.NOT_APPROVED, "hold", suspended=True,
         held=ident("12.4.0", image_tag="1.1")),
    Case("image-unchanged-passes",
         hr(values={"image": {"tag": "1.0"}}, paths=["image.tag"]),
         hr(history=DEPLOYED, values={"image": {"tag": "1.0"}}, paths=["image.tag"]),
         Outcome.ALLOW, Reason.UNCHANGED, "allow"),
    Case("image-compared-with-released-not-old-spec",
         hr(values={"image": {"tag": "1.1"}}, paths=["image.tag"],
            notes={ann.RELEASED: ident("12.4.0", image_tag="1.1")}),
         hr(history=DEPLOYED, values={"image": {"tag": "1.0"}}, paths=["image.tag"],
            notes={ann.RELEASED: ident("12.4.0", image_tag="1.1")}),
         Outcome.ALLOW, Reason.UNCHANGED, "allow"),
    Case("image-set-where-chart-default-was",
         hr(values={"image": {"tag": "1.1"}}, paths=["image.tag"]),
         hr(history=DEPLOYED, values={}, paths=["image.tag"]),
         Outcome.HOLD, Reason.NOT_APPROVED, "hold", suspended=True),
    Case("image-while-held-stays-held",
         hr(values={"image": {"tag": "1.1"}}, paths=["image.tag"]),
         hr(history=DEPLOYED, values={"image": {"tag": "1.1"}}, paths=["image.tag"], suspend=True,
            notes={ann.HELD: ident("12.4.0", image_tag="1.1"), ann.HELD_SINCE: EARLIER}),
         Outcome.HOLD, Reason.NOT_APPROVED, "hold", suspended=True, held_since=EARLIER),
    Case("chart-ref-images-gated-chart-not",
         hr(chart_ref=True, values={"image": {"tag": "1.1"}}, paths=["image.tag"]),
         hr(chart_ref=True, history="1.0.0", values={"image": {"tag": "1.0"}},
            paths=["image.tag"]),
         Outcome.HOLD, Reason.NOT_APPROVED, "hold", suspended=True,
         held=ident(None, image_tag="1.1", source=CHART_REF_SOURCE)),
    Case("chart-ref-without-images-passes", hr(chart_ref=True), hr(chart_ref=True,
         history="1.0.0"), Outcome.ALLOW, Reason.UNCHANGED, "allow"),
    # Safe answers when the rules cannot be evaluated.
    Case("unreadable-image-paths-holds", hr("12.4.0", notes={ann.IMAGE_PATHS: "nope"}),
         hr("12.4.0", history=DEPLOYED, notes={ann.IMAGE_PATHS: "nope"}), Outcome.HOLD,
         Reason.POLICY_UNREADABLE, "hold", suspended=True, warning="cannot read its gate policy"),
    Case("update-without-old-object-holds", hr("12.4.0"), None, Outcome.HOLD,
         Reason.STORED_OBJECT_MISSING, "hold", suspended=True),
    # OCIRepository (chartRef source): tag/digest held, semver never.
    Case("oci-tag-change-holds", oci({"tag": "1.1.0"}),
         oci({"tag": "1.0.0"}, revision="1.0.0@sha256:aa"), Outcome.HOLD, Reason.NOT_APPROVED,
         "hold", kind=OCI, suspended=True, held=oident("1.1.0"),
         warning="FluxUp holds my-app 1.1.0"),
    Case("oci-unchanged-passes", oci({"tag": "1.0.0"}),
         oci({"tag": "1.0.0"}, revision="1.0.0@sha256:aa"), Outcome.ALLOW, Reason.UNCHANGED,
         "allow", kind=OCI),
    Case("oci-digest-pin-to-deployed-passes", oci({"digest": "sha256:aa"}),
         oci({"tag": "1.0.0"}, revision="1.0.0@sha256:aa"), Outcome.ALLOW, Reason.UNCHANGED,
         "allow", kind=OCI),
    Case("oci-semver-passes", oci({"semver": ">=1.0.0"}),
         oci({"tag": "1.0.0"}, revision="1.0.0@sha256:aa"), Outcome.ALLOW,
         Reason.UNCHANGED, "allow", kind=OCI),
    Case("oci-approved-passes",
         oci({"tag": "1.1.0"}, notes={ann.APPROVED: approval(oident("1.1.0"))}),
         oci({"tag": "1.0.0"}, revision="1.0.0@sha256:aa"), Outcome.ALLOW, Reason.APPROVED,
         "allow", kind=OCI, user=OPERATOR),
    Case("oci-manual-unsuspend-denied",
         oci({"tag": "1.1.0"}, suspend=False, notes={ann.HELD: ident("1.1.0")}),
         oci({"tag": "1.1.0"}, suspend=True, revision="1.0.0@sha256:aa",
             notes={ann.HELD: ident("1.1.0")}),
         Outcome.HOLD, Reason.NOT_APPROVED, "unsuspend", kind=OCI, allowed=False,
         deny_reason="HeldUnsuspend", user="alice", message="OCIRepository apps/my-app"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_gate_rule(case: Case) -> None:
    incoming = copy.deepcopy(case.incoming)
    requester = build_requester(case.user, OPERATOR)
    admission = parse_admission(case.kind, incoming, case.stored, case.operation, requester)
    decision = evaluate(admission)
    assert (decision.outcome, decision.reason) == (case.outcome, case.reason)

    mutation = build_mutation(admission, decision, incoming, NOW)
    assert mutation.action == case.action
    assert incoming == case.incoming, "build_mutation must not modify its input"
    final = jsonpatch.apply_patch(incoming, list(mutation.patch))
    if "patch_len" in case.extra:
        assert len(mutation.patch) == case.extra["patch_len"]
    suspend = final.get("spec", {}).get("suspend")
    expected_suspend = case.suspended
    if expected_suspend is None and "suspend" in case.incoming.get("spec", {}):
        expected_suspend = case.incoming["spec"]["suspend"]
    assert suspend == expected_suspend
    notes = final.get("metadata", {}).get("annotations", {})
    if case.held is not None or (case.outcome is Outcome.ALLOW and case.action != "unsuspend"):
        assert notes.get(ann.HELD) == case.held
    if case.outcome is Outcome.ALLOW:
        assert ann.HELD_SINCE not in notes
    if case.held_since is not None:
        assert notes.get(ann.HELD_SINCE) == case.held_since
    if case.warning is not None:
        assert any(case.warning in w for w in mutation.warnings), mutation.warnings

    admitted = parse_admission(case.kind, final, case.stored, case.operation, requester)
    after = evaluate(admitted)
    verdict = validate_gated_object(admitted, after)
    assert verdict.allowed is case.allowed, verdict.message
    if not case.allowed:
        assert verdict.reason == case.deny_reason
    if case.message is not None:
        assert case.message in verdict.message


def test_mutation_is_idempotent_across_repeated_applies() -> None:
    """Applying the gate's patch, then re-sending the same manifest, converges."""
    stored = hr("12.4.0", history=DEPLOYED)
    manifest = hr("12.5.0")
    for _ in range(3):
        incoming = copy.deepcopy(manifest)  # Flux re-applies: suspend and annotations gone
        admission = parse_admission(HR, incoming, stored, "UPDATE", UNNAMED)
        decision = evaluate(admission)
        mutation = build_mutation(admission, decision, incoming, NOW)
        stored = jsonpatch.apply_patch(incoming, list(mutation.patch))
        stored["status"] = {"history": [{"chartVersion": DEPLOYED}]}
        assert stored["spec"]["suspend"] is True
        assert stored["metadata"]["annotations"][ann.HELD_SINCE] == format_rfc3339(NOW)
    later = NOW + dt.timedelta(hours=1)
    admission = parse_admission(HR, manifest, stored, "UPDATE", UNNAMED)
    mutation = build_mutation(admission, evaluate(admission), manifest, later)
    final = jsonpatch.apply_patch(manifest, list(mutation.patch))
    assert final["metadata"]["annotations"][ann.HELD_SINCE] == format_rfc3339(NOW)


def test_hold_patch_handles_missing_metadata_and_spec() -> None:
    incoming: dict[str, Any] = {"metadata": {"annotations": {ann.IMAGE_PATHS: '["a"]'}}}
    stored = {"status": {"history": [{"chartVersion": "1.0.0"}]},
              "metadata": {"annotations": {ann.IMAGE_PATHS: '["a"]',
                                           ann.RELEASED: ident(None, a="1")}}}
    admission = parse_admission(HR, incoming, stored, "UPDATE", UNNAMED)
    decision = evaluate(admission)
    assert decision.outcome is Outcome.HOLD
    final = jsonpatch.apply_patch(incoming, list(build_mutation(admission, decision, incoming,
                                                                NOW).patch))
    assert final["spec"] == {"suspend": True}
    bare: dict[str, Any] = {"spec": {"chart": {"spec": {"version": "1.0.0"}}}}
    a2 = parse_admission(HR, bare, None, "UPDATE", UNNAMED)
    d2 = evaluate(a2)
    assert d2.reason is Reason.STORED_OBJECT_MISSING
    final = jsonpatch.apply_patch(bare, list(build_mutation(a2, d2, bare, NOW).patch))
    assert final["metadata"]["annotations"][ann.HELD] == d2.desired.identity.to_json()


def test_annotation_names_with_slashes_are_escaped_in_pointers() -> None:
    stored = hr(history=DEPLOYED)
    incoming = hr("12.5.0", notes={"other": "x"})
    admission = parse_admission(HR, incoming, stored, "UPDATE", UNNAMED)
    mutation = build_mutation(admission, evaluate(admission), incoming, NOW)
    paths = [op["path"] for op in mutation.patch]
    assert "/metadata/annotations/fluxup.dev~1held" in paths


# --- FluxUp's own objects ---------------------------------------------------------------


def managed_app(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "my-app", "namespace": "apps"},
            "spec": {"helmReleaseRef": {"name": "my-app"}, **spec}}


@pytest.mark.parametrize(
    ("kind", "obj", "allow_cross", "problem"),
    [
        ("ManagedApp", managed_app(), False, None),
        ("ManagedApp", managed_app(helmReleaseRef={"name": "a", "namespace": "apps"}), False,
         None),
        ("ManagedApp", managed_app(helmReleaseRef={"name": "a", "namespace": "other"}), False,
         "spec.helmReleaseRef.namespace 'other'"),
        ("ManagedApp", managed_app(helmReleaseRef={"name": "a", "namespace": "other"}), True,
         None),
        ("ManagedApp", managed_app(volumeSnapshots={"pvcs": [{"name": "d"}, {"name": "e",
         "namespace": "db"}]}), False, "spec.volumeSnapshots.pvcs[1].namespace 'db'"),
        ("ManagedApp", managed_app(volumeSnapshots={"pvcs": [{"name": "e", "namespace": "db"}]}),
         True, None),
        ("ManagedApp", managed_app(kustomizationRef={"name": "apps", "namespace": "flux-system"}),
         False, None),
        ("ManagedApp", managed_app(versionPolicy={"images": [{"name": "x", "valuesPath": "a..b"}]}),
         False, "spec.versionPolicy.images[0].valuesPath"),
        ("ManagedApp", {"spec": "garbage"}, False, None),
        ("UpgradeRequest", {"spec": {"managedAppRef": {"name": "a"}, "targetVersion": "12.5.0"}},
         False, None),
        ("UpgradeRequest", {"spec": {"managedAppRef": {"name": "a"}, "targetVersion": "12.x"}},
         False, "is a range"),
        ("UpgradeRequest", {"spec": {"managedAppRef": {"name": "a", "namespace": "x"}}}, False,
         "spec.managedAppRef.namespace"),
        ("UpgradeRequest", {"spec": {"managedAppRef": {"name": "a"}, "targetImages": [
         {"valuesPath": "[0]", "tag": "1"}]}}, False, "spec.targetImages[0].valuesPath"),
        ("RollbackRequest", {"spec": {"upgradeRequestRef": {"name": "u"}}}, False, None),
        ("RollbackRequest", {"spec": {}}, False, "exactly one"),
        ("RollbackRequest", {"spec": {"upgradeRequestRef": {"name": "u"},
         "snapshotRef": {"name": "s"}}}, False, "exactly one"),
        ("RollbackRequest", {"spec": {"snapshotRef": {"name": "s", "namespace": "x"}}}, False,
         "spec.snapshotRef.namespace"),
        ("SomethingElse", {"spec": {"x": {"namespace": "other"}}}, False, None),
    ],
)
def test_validate_fluxup_object(
    kind: str, obj: dict[str, Any], allow_cross: bool, problem: str | None
) -> None:
    verdict = validate_fluxup_object(kind, obj, "apps", allow_cross)
    assert verdict.allowed is (problem is None), verdict.message
    if problem is not None:
        assert problem in verdict.message
        assert verdict.reason == "InvalidReference"


# --- a bypass covers the one identity it was bound to ------------------------------------


def _admit(incoming: dict[str, Any], stored: dict[str, Any] | None, user: str = FLUX,
           kind: GatedKind = HR) -> tuple[str, dict[str, Any], Any, tuple[str, ...]]:
    """Mutate then validate, as the API server does: (action, final object, verdict,
    warnings)."""
    op: Literal["CREATE", "UPDATE"] = "UPDATE" if stored is not None else "CREATE"
    requester = build_requester(user, OPERATOR)
    admission = parse_admission(kind, incoming, stored, op, requester)
    decision = evaluate(admission)
    mutation = build_mutation(admission, decision, incoming, NOW)
    final = jsonpatch.apply_patch(copy.deepcopy(incoming), list(mutation.patch))
    admitted = parse_admission(kind, final, stored, op, requester)
    verdict = validate_gated_object(admitted, evaluate(admitted))
    return mutation.action, final, verdict, mutation.warnings


def _binding(final: dict[str, Any]) -> Binding | None:
    return parse_binding(final["metadata"].get("annotations", {}).get(ann.BYPASSED))


HELD_STORED = hr("12.5.0", suspend=True, history=DEPLOYED, notes=HELD_1250)


def test_a_new_bypass_is_bound_to_the_identity_it_lets_through() -> None:
    incoming = hr("12.5.0", suspend=False, notes={**HELD_1250, ann.BYPASS: "INC-1"})
    action, final, verdict, warnings = _admit(incoming, HELD_STORED, user="alice")
    assert (action, verdict.allowed, verdict.reason) == ("bypass", True, "Bypassed")
    assert _binding(final) == Binding(parse_identity(ident("12.5.0")), used=True)
    assert ann.HELD not in final["metadata"]["annotations"]  # no longer held
    assert final["spec"]["suspend"] is False
    assert any("gate bypassed for my-app 12.5.0: INC-1" in w for w in warnings)


def test_a_bypass_left_on_the_object_holds_the_next_version() -> None:
    """The bypass of 12.5.0 stays (by hand or in Git): 12.6.0 is held again, and a
    manual un-suspend of it is denied."""
    _, bypassed, _, _ = _admit(
        hr("12.5.0", suspend=False, notes={**HELD_1250, ann.BYPASS: "INC-1"}), HELD_STORED,
        user="alice")
    bypassed["status"] = {"history": [{"chartVersion": DEPLOYED}]}
    # Flux applies 12.6.0 from Git; its server-side apply drops the binding it never owned
    flux = hr("12.6.0", notes={ann.BYPASS: "INC-1"})
    action, held, verdict, warnings = _admit(flux, bypassed)
    assert (action, verdict.allowed) == ("hold", True)
    assert held["spec"]["suspend"] is True
    assert held["metadata"]["annotations"][ann.HELD] == ident("12.6.0")
    assert _binding(held) == _binding(bypassed)  # carried over, still 12.5.0
    assert any("covers only 12.5.0, not 12.6.0" in w for w in warnings)
    held["status"] = {"history": [{"chartVersion": DEPLOYED}]}
    person = copy.deepcopy(held)
    person["spec"]["suspend"] = False
    action, _, verdict, _ = _admit(person, held, user="alice")
    assert (action, verdict.allowed, verdict.reason) == ("unsuspend", False, "HeldUnsuspend")


def test_a_bypass_binding_cannot_be_moved_by_editing_it() -> None:
    _, bypassed, _, _ = _admit(
        hr("12.5.0", suspend=False, notes={**HELD_1250, ann.BYPASS: "INC-1"}), HELD_STORED,
        user="alice")
    bypassed["status"] = {"history": [{"chartVersion": DEPLOYED}]}
    forged = hr("12.6.0", suspend=False, notes={
        ann.BYPASS: "INC-1",
        ann.BYPASSED: build_binding(parse_identity(ident("12.6.0")), used=True)})
    action, final, verdict, _ = _admit(forged, bypassed, user="alice")
    assert action == "hold"
    assert final["spec"]["suspend"] is True  # the gate suspends it again
    assert _binding(final) == _binding(bypassed)
    assert verdict.allowed
    # without the mutating webhook the forged binding reaches validation: denied
    admission = parse_admission(HR, forged, bypassed, "UPDATE",
                                build_requester("alice", OPERATOR))
    denied = validate_gated_object(admission, evaluate(admission))
    assert (denied.allowed, denied.reason) == (False, "BypassBindingMismatch")


def test_removing_and_setting_a_bypass_again_binds_it_anew() -> None:
    _, bypassed, _, _ = _admit(
        hr("12.5.0", suspend=False, notes={**HELD_1250, ann.BYPASS: "INC-1"}), HELD_STORED,
        user="alice")
    bypassed["status"] = {"history": [{"chartVersion": "12.5.0"}]}
    _, cleared, _, _ = _admit(hr("12.5.0", suspend=False), bypassed, user="alice")
    assert ann.BYPASSED not in cleared["metadata"].get("annotations", {})
    cleared["status"] = {"history": [{"chartVersion": "12.5.0"}]}
    _, held, _, _ = _admit(hr("12.6.0"), cleared)
    assert held["spec"]["suspend"] is True
    held["status"] = cleared["status"]
    again = copy.deepcopy(held)
    again["metadata"]["annotations"][ann.BYPASS] = "INC-2"
    again["spec"]["suspend"] = False
    action, final, verdict, _ = _admit(again, held, user="alice")
    assert (action, verdict.allowed) == ("bypass", True)
    assert _binding(final) == Binding(parse_identity(ident("12.6.0")), used=True)


def test_a_bypass_set_while_nothing_is_held_covers_only_what_runs() -> None:
    stored = hr("12.4.0", history=DEPLOYED)
    action, at_rest, _, _ = _admit(hr("12.4.0", notes={ann.BYPASS: "just in case"}), stored,
                                   user="alice")
    assert action == "allow"
    assert _binding(at_rest) == Binding(parse_identity(ident("12.4.0")), used=False)
    at_rest["status"] = {"history": [{"chartVersion": DEPLOYED}]}
    action, held, _, _ = _admit(hr("12.5.0", notes={ann.BYPASS: "just in case"}), at_rest)
    assert action == "hold"
    assert held["spec"]["suspend"] is True


# --- Flux's own applies are held, never denied ---------------------------------------------


@pytest.mark.parametrize(("username", "options", "flux"), [
    (FLUX, None, True),
    ("system:serviceaccount:gitops:kustomize-controller", None, True),
    ("alice", {"fieldManager": "kustomize-controller"}, True),
    ("alice", {"fieldManager": "kubectl-patch"}, False),
    ("system:serviceaccount:flux-system:helm-controller", None, False),
    ("kustomize-controller", None, False),
    ("system:serviceaccount:x:kustomize-controller:extra", None, False),
    ("", "garbage", False),
])
def test_is_flux_apply(username: str, options: Any, flux: bool) -> None:
    assert is_flux_apply(username, options) is flux


def test_a_git_manifest_saying_suspend_false_stays_held_and_is_not_denied() -> None:
    """kustomize-controller applies ``suspend: false`` from Git during a hold: the gate
    keeps the release held (re-suspends it) instead of denying the apply."""
    incoming = hr("12.5.0", suspend=False, notes=HELD_1250)
    flux = build_requester(FLUX, OPERATOR)
    admission = parse_admission(HR, incoming, HELD_STORED, "UPDATE", flux)
    decision = evaluate(admission)
    mutation = build_mutation(admission, decision, incoming, NOW)
    assert mutation.action == "hold"
    final = jsonpatch.apply_patch(copy.deepcopy(incoming), list(mutation.patch))
    assert final["spec"]["suspend"] is True
    assert final["metadata"]["annotations"][ann.HELD_SINCE] == EARLIER  # the same hold
    admitted = parse_admission(HR, final, HELD_STORED, "UPDATE", flux)
    verdict = validate_gated_object(admitted, evaluate(admitted))
    assert verdict.allowed, verdict.message
    # the same change by a person is a deliberate un-suspend: denied with a message
    by_person = parse_admission(HR, incoming, HELD_STORED, "UPDATE",
                                build_requester("alice", OPERATOR))
    person = build_mutation(by_person, decision, incoming, NOW)
    assert person.action == "unsuspend"
    denied = validate_gated_object(by_person, decision)
    assert (denied.allowed, denied.reason) == (False, "HeldUnsuspend")


def test_a_bypass_that_comes_from_git_lets_nothing_new_through() -> None:
    """A bypass kept in Git (or back in Git after the operator removed it) arrives with
    Flux's apply: it covers only what runs; the new version is held."""
    action, final, verdict, _ = _admit(hr("12.5.0", notes={ann.BYPASS: "in git"}),
                                       hr("12.4.0", history=DEPLOYED))
    assert (action, verdict.allowed) == ("hold", True)
    assert final["spec"]["suspend"] is True
    binding = _binding(final)
    assert binding is not None
    assert (binding.identity.chart, binding.used) == ("12.4.0", False)
    # a person's un-suspend of the held 12.5.0 is still denied: the bypass covers 12.4.0
    final["status"] = {"history": [{"chartVersion": DEPLOYED}]}
    person = copy.deepcopy(final)
    person["spec"]["suspend"] = False
    action, _, verdict, _ = _admit(person, final, user="alice")
    assert (action, verdict.allowed, verdict.reason) == ("unsuspend", False, "HeldUnsuspend")


def _with_values_from(obj: dict[str, Any]) -> dict[str, Any]:
    obj["spec"]["valuesFrom"] = [{"kind": "ConfigMap", "name": "my-app-values"}]
    return obj


def test_an_image_path_left_to_values_from_is_not_judged_at_apply_time() -> None:
    """The tag lives in a valuesFrom ConfigMap the HelmRelease does not show: line 1
    neither holds the object for it (the release record, line 2, does) nor lets a tag
    written into spec.values (which Flux merges over valuesFrom) pass unnoticed."""
    released = json.dumps({"chart": "12.4.0", "images": {"image.tag": "1.0.0"},
                           "source": HR_SOURCE}, sort_keys=True, separators=(",", ":"))
    stored = _with_values_from(hr(paths=["image.tag"], history="12.4.0",
                                  notes={ann.RELEASED: released}))
    incoming = copy.deepcopy(stored)
    incoming["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"] = "now"
    decision = evaluate(parse_admission(GatedKind.HELM_RELEASE, incoming, stored, "UPDATE",
                                        UNNAMED))
    assert (decision.outcome, decision.reason) == (Outcome.ALLOW, Reason.UNCHANGED)
    assert any("valuesFrom" in u for u in decision.desired.ungated)

    overridden = copy.deepcopy(stored)
    overridden["spec"]["values"] = {"image": {"tag": "1.1.0"}}
    decision = evaluate(parse_admission(GatedKind.HELM_RELEASE, overridden, stored, "UPDATE",
                                        UNNAMED))
    assert (decision.outcome, decision.reason) == (Outcome.HOLD, Reason.NOT_APPROVED)
    assert dict(decision.desired.identity.images) == {"image.tag": "1.1.0"}


def test_enrolling_an_app_whose_tag_comes_from_values_from_holds_nothing() -> None:
    """The operator's first patch of such a release (label, image paths) arrives with
    nothing recorded yet: what runs is the stored spec, whose image repository beside the
    valuesFrom tag must count as running, or the app is held for a version it runs."""
    values = {"image": {"repository": "registry/app"}}
    stored = _with_values_from(hr(values=values, history="12.4.0", managed=False))
    incoming = _with_values_from(hr(values=values, history="12.4.0", paths=["image.tag"]))
    decision = evaluate(parse_admission(GatedKind.HELM_RELEASE, incoming, stored, "UPDATE",
                                        UNNAMED))
    assert (decision.outcome, decision.reason) == (Outcome.ALLOW, Reason.UNCHANGED)
    assert dict(decision.desired.identity.extras) == {"image.repository": "registry/app"}
