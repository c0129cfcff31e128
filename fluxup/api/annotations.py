"""Names of the labels and annotations FluxUp reads and writes on Flux objects.

Shared by the operator (which writes most of them) and the admission gate (which reads
them and writes the ``held`` pair). Pure constants; who may write each one is part of
its contract and enforced by the validating webhook (DESIGN.md §2, rule 7).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "APPROVED",
    "BYPASS",
    "BYPASSED",
    "HELD",
    "HELD_SINCE",
    "IMAGE_PATHS",
    "MANAGED_APP_LABEL",
    "OPERATOR_ONLY_ANNOTATIONS",
    "PREFIX",
    "RELEASED",
    "RELEASE_APPROVED",
    "RELEASE_GATE",
    "RELEASE_KEY_LABEL",
    "RELEASE_RECORDS_NAMESPACE_LABEL",
    "REQUESTED_AT",
    "RESET_AT",
    "UPGRADE_REQUEST",
]

PREFIX: Final = "fluxup.dev/"

#: Label the operator puts on the HelmRelease (and OCIRepository) of every ManagedApp;
#: its value is the ManagedApp's name. The webhook configurations select on it
#: (``Exists``), so unmanaged objects never reach the gate. Only the operator may remove it.
MANAGED_APP_LABEL: Final = "fluxup.dev/managed-app"

#: JSON ``{"identity": …, "request": "<Kind>/<ns>/<name>"}`` (see
#: :func:`fluxup.logic.identity.build_approval`): the identity the operator approved for
#: one UpgradeRequest/RollbackRequest after that request's pre-upgrade snapshots became
#: ReadyToUse. Removed when the request ends; one that names no request approves nothing.
#: Operator-only.
APPROVED: Final = "fluxup.dev/approved"

#: Identity (JSON) running after FluxUp's last successful release. Carries what the
#: HelmRelease status cannot tell (image tags). Operator-only.
RELEASED: Final = "fluxup.dev/released"

#: JSON list of value paths into ``spec.values`` whose values are image tags the gate
#: treats as part of the identity, e.g. ``["image.tag", "db.image.tag"]``. Written by the
#: operator from the ManagedApp, so the gate needs no API call. Operator-only.
IMAGE_PATHS: Final = "fluxup.dev/image-paths"

#: Identity (JSON) the gate is holding; written by the mutating webhook.
HELD: Final = "fluxup.dev/held"

#: RFC 3339 UTC time the current hold started; written by the mutating webhook.
HELD_SINCE: Final = "fluxup.dev/held-since"

#: Audited emergency override: ``fluxup.dev/bypass: "<reason>"`` lets a person
#: un-suspend a held object. The operator records it as an Event and a notification.
BYPASS: Final = "fluxup.dev/bypass"

#: JSON ``{"identity": …, "used": bool}``: the one identity a ``fluxup.dev/bypass``
#: covers. Written by the mutating webhook when the bypass first appears (the identity
#: the object asks for then; ``used``: the gate would have held it) and carried over on
#: every later write, so a bypass left on an object never opens the gate for a later
#: version. The operator removes the bypass (and this) once the identity runs.
BYPASSED: Final = "fluxup.dev/bypassed"

#: Name of the UpgradeRequest handling the current hold (informational; the operator
#: writes it so the gate's messages can name it without an API call).
UPGRADE_REQUEST: Final = "fluxup.dev/upgrade-request"

#: Annotations nobody but the operator's own user may add, change or remove.
OPERATOR_ONLY_ANNOTATIONS: Final = (APPROVED, RELEASED, IMAGE_PATHS)

# --- Line 2 of the gate: Helm's release records (see fluxup.logic.release_record) ----

#: Label on a ManagedApp: hash of the storage namespace and name of its Helm release, so
#: the webhook finds the app of a release record with one label-selected list.
RELEASE_KEY_LABEL: Final = "fluxup.dev/release-key"

#: Annotation on a ManagedApp (JSON): the Helm release it protects (``namespace``,
#: ``release``), the image value ``paths`` and the ``deployed`` release identities.
RELEASE_GATE: Final = "fluxup.dev/release-gate"

#: Annotation on a ManagedApp (JSON ``{"identity": …, "request": "<Kind>/<ns>/<name>"}``):
#: the release identity one request may install, written after its snapshots are
#: ReadyToUse and removed when the request ends.
RELEASE_APPROVED: Final = "fluxup.dev/release-approved"

#: Label the operator puts on namespaces that store a managed app's Helm release records;
#: line 2's webhook configuration selects these namespaces only.
RELEASE_RECORDS_NAMESPACE_LABEL: Final = "fluxup.dev/release-records"

#: ManagedApp metadata only the operator may write.
OPERATOR_ONLY_APP_ANNOTATIONS: Final = (RELEASE_GATE, RELEASE_APPROVED)

#: Flux's documented "reconcile now" annotation (any Flux object).
REQUESTED_AT: Final = "reconcile.fluxcd.io/requestedAt"
#: helm-controller resets its failure counters when this equals ``requestedAt``.
RESET_AT: Final = "reconcile.fluxcd.io/resetAt"
