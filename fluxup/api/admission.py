"""Wire format of ``admission.k8s.io/v1`` AdmissionReview, as TypedDicts and Literals.

The webhook transport parses request bodies into these shapes at the boundary
(:mod:`webhook.review`); the pure gate rules read them. ``object`` and ``oldObject``
stay plain JSON (``JSONObject``) because their schema depends on the kind; the gate
navigates them defensively. Pure types, no I/O.
"""

from __future__ import annotations

from typing import Any, Final, Literal, NotRequired, Required, TypedDict

__all__ = [
    "ADMISSION_API_VERSION",
    "ADMISSION_KIND",
    "OPERATIONS",
    "AdmissionRequest",
    "AdmissionResponse",
    "AdmissionReview",
    "GroupVersionKind",
    "GroupVersionResource",
    "JSONObject",
    "Operation",
    "PatchOperation",
    "ResponseStatus",
    "UserInfo",
]

ADMISSION_API_VERSION: Final = "admission.k8s.io/v1"
ADMISSION_KIND: Final = "AdmissionReview"

#: A decoded JSON object (a Kubernetes object, or part of one).
JSONObject = dict[str, Any]

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
OPERATIONS: Final[tuple[Operation, ...]] = ("CREATE", "UPDATE", "DELETE", "CONNECT")


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class UserInfo(TypedDict, total=False):
    username: str
    uid: str
    groups: list[str]
    extra: dict[str, list[str]]


class AdmissionRequest(TypedDict, total=False):
    uid: Required[str]
    kind: Required[GroupVersionKind]
    resource: GroupVersionResource
    subResource: str
    requestKind: GroupVersionKind
    requestResource: GroupVersionResource
    requestSubResource: str
    name: str
    namespace: str
    operation: Required[Operation]
    userInfo: UserInfo
    object: JSONObject | None
    oldObject: JSONObject | None
    dryRun: bool
    options: JSONObject | None


class ResponseStatus(TypedDict, total=False):
    code: int
    message: str
    reason: str
    status: Literal["Success", "Failure"]


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    status: NotRequired[ResponseStatus]
    patch: NotRequired[str]
    patchType: NotRequired[Literal["JSONPatch"]]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]


class AdmissionReview(TypedDict):
    apiVersion: Literal["admission.k8s.io/v1"]
    kind: Literal["AdmissionReview"]
    request: NotRequired[AdmissionRequest]
    response: NotRequired[AdmissionResponse]


class PatchOperation(TypedDict):
    """One RFC 6902 JSON Patch operation, as the gate emits them."""

    op: Literal["add", "remove", "replace", "test"]
    path: str
    value: NotRequired[Any]
