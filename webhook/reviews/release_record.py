"""Line 2 of the gate: review the CREATE of a Helm release record (a Secret).

Helm writes ``sh.helm.release.v1.<release>.v<N>`` before it applies any object of the
revision, so denying this CREATE stops the upgrade with nothing changed in the cluster.
:func:`release_key_of_request` says which ManagedApps to look up;
:func:`review_release_record` decides from the record and their line-2 views
(:func:`fluxup.logic.release_record.decide_release_record`). Pure: the lookup happens
in ``webhook.app``. The record's values never leave this module except the image values
the ManagedApp names, inside the denial message.
"""

from __future__ import annotations

from collections.abc import Sequence

from fluxup.api.admission import AdmissionRequest
from fluxup.logic.gate_values import get, get_str, labels_of
from fluxup.logic.release_record import (
    RECORD_OWNER,
    ReleaseGate,
    ReleaseRecordError,
    build_release_key,
    decide_release_record,
    decode_release,
)
from webhook.reviews.base import Reviewed, allow, deny

__all__ = ["KIND", "release_key_of_request", "review_release_record"]

KIND = "Secret"


def release_key_of_request(request: AdmissionRequest) -> str | None:
    """The release key of a Helm record CREATE; ``None`` for anything else (allowed)."""
    obj = request.get("object")
    if request["operation"] != "CREATE" or request["kind"]["kind"] != KIND or obj is None:
        return None
    labels = labels_of(obj)
    release = labels.get("name")
    namespace = request.get("namespace") or get_str(obj, "metadata", "namespace")
    if labels.get("owner") != RECORD_OWNER or not release or not namespace:
        return None
    return build_release_key(namespace, release)


def review_release_record(
    request: AdmissionRequest, gates: Sequence[ReleaseGate] | str
) -> Reviewed:
    """Allow or deny the record; ``gates`` is the lookup's result or why it failed."""
    if isinstance(gates, str):
        return deny(
            request, "gate-state-unavailable",
            f"FluxUp cannot check this Helm release record ({gates}); no revision of a "
            "managed release is written while FluxUp cannot tell whether it is approved. "
            "Check the fluxup-webhook logs and its RBAC (get/list managedapps).",
        )
    if not gates:
        return allow(request, "not-gated")
    raw = get(request.get("object"), "data", "release")
    try:
        if not isinstance(raw, str):
            raise ReleaseRecordError("the Secret has no data.release")
        record = decode_release(raw)
    except ReleaseRecordError as exc:
        verdict = decide_release_record(exc, gates)
    else:
        verdict = decide_release_record(record, gates)
    if verdict.allowed:
        return allow(request, verdict.reason)
    return deny(request, verdict.reason, verdict.message)
