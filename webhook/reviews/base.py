"""Shared vocabulary of the per-kind reviews: stage, policy, result and response builders.

A review is a pure function ``(request, stage, policy, now) -> Reviewed``; the transport
(:mod:`webhook.app`) only parses, calls it and encodes. Nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from fluxup.api.admission import AdmissionRequest, AdmissionResponse, PatchOperation
from webhook.envelope import encode_patch

__all__ = [
    "GatePolicy",
    "Review",
    "Reviewed",
    "Stage",
    "allow",
    "deny",
]

Stage = Literal["mutate", "validate"]


@dataclass(frozen=True)
class GatePolicy:
    """Settings the reviews need; loaded once at startup, passed explicitly."""

    operator_username: str
    allow_cross_namespace_refs: bool = False


@dataclass(frozen=True)
class Reviewed:
    """A review's response plus the labels the metrics count it under."""

    response: AdmissionResponse
    kind: str
    decision: str


class Review(Protocol):
    def __call__(
        self, request: AdmissionRequest, stage: Stage, policy: GatePolicy, now: dt.datetime
    ) -> Reviewed: ...


def allow(
    request: AdmissionRequest,
    decision: str,
    *,
    patch: Sequence[PatchOperation] = (),
    warnings: Sequence[str] = (),
) -> Reviewed:
    response: AdmissionResponse = {"uid": request["uid"], "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = encode_patch(patch)
    if warnings:
        response["warnings"] = list(warnings)
    response["auditAnnotations"] = {"decision": decision}
    return Reviewed(response, request["kind"]["kind"], decision)


def deny(
    request: AdmissionRequest, decision: str, message: str, *, code: int = 403
) -> Reviewed:
    response: AdmissionResponse = {
        "uid": request["uid"],
        "allowed": False,
        "status": {
            "code": code,
            "message": message,
            "reason": "Forbidden" if code == 403 else "BadRequest",
            "status": "Failure",
        },
        "auditAnnotations": {"decision": decision},
    }
    return Reviewed(response, request["kind"]["kind"], "deny")
