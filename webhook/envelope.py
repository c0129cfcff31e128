"""Parse AdmissionReview request bodies and encode responses (the wire boundary).

:func:`parse_review` turns raw bytes into a typed :class:`AdmissionRequest` or raises
:class:`MalformedReview` (the transport answers HTTP 400); after it, the reviews can rely
on the envelope's types. The embedded ``object``/``oldObject`` stay arbitrary JSON
objects. :func:`encode_review` wraps a response. Pure; used only by :mod:`webhook.app`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from fluxup.api.admission import (
    ADMISSION_API_VERSION,
    ADMISSION_KIND,
    OPERATIONS,
    AdmissionRequest,
    AdmissionResponse,
    AdmissionReview,
    GroupVersionKind,
    GroupVersionResource,
    PatchOperation,
    UserInfo,
)

__all__ = ["MalformedReview", "encode_patch", "encode_review", "parse_review"]


class MalformedReview(ValueError):
    """The body is not an ``admission.k8s.io/v1`` AdmissionReview request."""


def _gvk(value: object, field: str) -> GroupVersionKind:
    if not isinstance(value, dict):
        raise MalformedReview(f"request.{field} must be an object")
    parts = [value.get(k, "") for k in ("group", "version", "kind")]
    if not all(isinstance(p, str) for p in parts) or not parts[2]:
        raise MalformedReview(f"request.{field} needs string group, version and kind")
    return {"group": parts[0], "version": parts[1], "kind": parts[2]}


def _gvr(value: object) -> GroupVersionResource | None:
    if not isinstance(value, dict):
        return None
    parts = [value.get(k, "") for k in ("group", "version", "resource")]
    if not all(isinstance(p, str) for p in parts):
        return None
    return {"group": parts[0], "version": parts[1], "resource": parts[2]}


def _user_info(value: object) -> UserInfo:
    info: UserInfo = {}
    if not isinstance(value, dict):
        return info
    username, uid, groups = value.get("username"), value.get("uid"), value.get("groups")
    if isinstance(username, str):
        info["username"] = username
    if isinstance(uid, str):
        info["uid"] = uid
    if isinstance(groups, list) and all(isinstance(g, str) for g in groups):
        info["groups"] = list(groups)
    return info


def _optional_object(request: dict[str, Any], field: str) -> dict[str, Any] | None:
    value = request.get(field)
    if value is None or isinstance(value, dict):
        return value
    raise MalformedReview(f"request.{field} must be an object or null")


def parse_review(body: bytes) -> AdmissionRequest:
    """The typed request of an AdmissionReview body; :class:`MalformedReview` otherwise."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedReview("body is not JSON") from None
    if not isinstance(doc, dict):
        raise MalformedReview("body must be a JSON object")
    if doc.get("apiVersion") != ADMISSION_API_VERSION or doc.get("kind") != ADMISSION_KIND:
        raise MalformedReview(f"expected apiVersion {ADMISSION_API_VERSION}, kind {ADMISSION_KIND}")
    raw = doc.get("request")
    if not isinstance(raw, dict):
        raise MalformedReview("request must be an object")
    uid = raw.get("uid")
    if not isinstance(uid, str) or not uid:
        raise MalformedReview("request.uid must be a non-empty string")
    operation = raw.get("operation")
    if operation not in OPERATIONS:
        raise MalformedReview(f"request.operation must be one of {', '.join(OPERATIONS)}")
    request: AdmissionRequest = {
        "uid": uid,
        "kind": _gvk(raw.get("kind"), "kind"),
        "operation": operation,
        "userInfo": _user_info(raw.get("userInfo")),
        "object": _optional_object(raw, "object"),
        "oldObject": _optional_object(raw, "oldObject"),
    }
    resource = _gvr(raw.get("resource"))
    if resource is not None:
        request["resource"] = resource
    sub, name, namespace = raw.get("subResource"), raw.get("name"), raw.get("namespace")
    if isinstance(sub, str):
        request["subResource"] = sub
    if isinstance(name, str):
        request["name"] = name
    if isinstance(namespace, str):
        request["namespace"] = namespace
    if isinstance(raw.get("dryRun"), bool):
        request["dryRun"] = raw["dryRun"]
    if isinstance(raw.get("options"), dict):  # e.g. PatchOptions.fieldManager
        request["options"] = raw["options"]
    return request


def encode_patch(patch: Sequence[PatchOperation]) -> str:
    """Base64 of the JSON Patch, as ``AdmissionResponse.patch`` wants it."""
    return base64.b64encode(json.dumps(list(patch)).encode()).decode()


def encode_review(response: AdmissionResponse) -> bytes:
    """The AdmissionReview body carrying ``response``."""
    review: AdmissionReview = {
        "apiVersion": ADMISSION_API_VERSION,
        "kind": ADMISSION_KIND,
        "response": response,
    }
    return json.dumps(review, separators=(",", ":")).encode()
