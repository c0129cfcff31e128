"""Line 2 of the gate: review the CREATE of a Helm release record (a Secret).

Helm writes ``sh.helm.release.v1.<release>.v<N>`` before it applies any object of the
revision, so denying this CREATE stops the upgrade with nothing changed in the cluster.
:func:`admitted_release_secret` parses the Secret once (a typed
:class:`~fluxup.logic.admitted.ReleaseSecret`) and :func:`release_key_of` says which
ManagedApps to look up; :func:`review_release_record` decides from the record and their
line-2 views
(:func:`fluxup.logic.release_record.decide_release_record`). Pure: the lookup happens
in ``webhook.app``. The record's values never leave this module except the image values
the ManagedApp names, inside the denial message.
"""

from __future__ import annotations

from collections.abc import Sequence

from fluxup.api.admission import AdmissionRequest
from fluxup.logic.admitted import ReleaseSecret, parse_release_secret
from fluxup.logic.release_record import (
    ReleaseGate,
    ReleaseRecordError,
    build_release_key,
    decide_release_record,
    decode_release,
)
from webhook.reviews.base import Reviewed, allow, deny

__all__ = ["KIND", "admitted_release_secret", "release_key_of", "review_release_record"]

KIND = "Secret"


def admitted_release_secret(request: AdmissionRequest) -> ReleaseSecret | None:
    """The Helm release record a CREATE writes; ``None`` for anything else (allowed)."""
    obj = request.get("object")
    if request["operation"] != "CREATE" or request["kind"]["kind"] != KIND or obj is None:
        return None
    secret = parse_release_secret(obj, request.get("namespace", ""))
    if not secret.helm_owned or not secret.release or not secret.namespace:
        return None
    return secret


def release_key_of(secret: ReleaseSecret) -> str:
    """The release key under which the ManagedApps protecting ``secret``'s release are
    labelled."""
    return build_release_key(secret.namespace, secret.release)


def review_release_record(
    request: AdmissionRequest, secret: ReleaseSecret, gates: Sequence[ReleaseGate] | str
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
    try:
        if secret.record is None:
            raise ReleaseRecordError("the Secret has no data.release")
        record = decode_release(secret.record)
    except ReleaseRecordError as exc:
        verdict = decide_release_record(exc, gates)
    else:
        verdict = decide_release_record(record, gates)
    if verdict.allowed:
        return allow(request, verdict.reason)
    return deny(request, verdict.reason, verdict.message)
