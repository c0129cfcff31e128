"""Who may push a Renovate report to the operator: token and access review, as data.

Called by :mod:`fluxup.reconcile.report_ingest`, which sends what is built here to the
API server (``TokenReview``, ``SubjectAccessReview``) and hands the answers back to be
judged here. A sender authenticates with a Kubernetes ServiceAccount token (``Authorization:
Bearer <token>``) and is authorized by RBAC on a virtual resource: verb ``create`` on
``managedapps/report`` in group ``fluxup.dev``, cluster-wide (a report can touch the apps
of any namespace). The shipped ClusterRole ``fluxup-report-sender`` grants exactly that.

The token is never put into a message, an exception or a log. Pure; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fluxup.api.constants import GROUP
from fluxup.errors import NotAuthenticatedError, NotAuthorizedError

__all__ = [
    "REPORT_RESOURCE",
    "REPORT_SUBRESOURCE",
    "REPORT_VERB",
    "Sender",
    "bearer_token",
    "build_access_review",
    "build_token_review",
    "determine_allowed",
    "determine_sender",
]

#: The RBAC rule a sender needs: ``create`` on ``managedapps/report`` in ``fluxup.dev``.
REPORT_RESOURCE: Final = "managedapps"
REPORT_SUBRESOURCE: Final = "report"
REPORT_VERB: Final = "create"
#: A ServiceAccount token is a JWT of a few hundred bytes to a few KiB.
MAX_TOKEN_CHARS: Final = 16 * 1024
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]+$")
_HINT = ("send a ServiceAccount token as 'Authorization: Bearer <token>' "
         "(e.g. from `kubectl create token <serviceaccount>`)")


@dataclass(frozen=True)
class Sender:
    """The authenticated user behind a token (what TokenReview says)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header; :class:`NotAuthenticatedError`
    when there is none or it cannot be a token."""
    if not header:
        raise NotAuthenticatedError(f"no credentials: {_HINT}")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticatedError(f"the Authorization header is not a bearer token: {_HINT}")
    if len(token) > MAX_TOKEN_CHARS or not _TOKEN.match(token):
        raise NotAuthenticatedError(f"the bearer token is malformed: {_HINT}")
    return token


def build_token_review(token: str, audiences: Sequence[str] = ()) -> dict[str, Any]:
    """The ``TokenReview`` to create for ``token`` (bound to ``audiences`` when given)."""
    spec: dict[str, Any] = {"token": token}
    if audiences:
        spec["audiences"] = list(audiences)
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def determine_sender(review: Mapping[str, Any], audiences: Sequence[str] = ()) -> Sender:
    """The user a created ``TokenReview`` names; :class:`NotAuthenticatedError` when the
    API server did not authenticate the token (or not for ``audiences``)."""
    status = review.get("status") or {}
    if status.get("authenticated") is not True:
        # the API server's error text names no secret, but keep it short and on one line
        why = re.sub(r"\s+", " ", str(status.get("error") or "token not accepted"))[:200]
        raise NotAuthenticatedError(f"the API server did not authenticate the token ({why}); "
                                    f"{_HINT}")
    if audiences and not set(_strings(status.get("audiences"))) & set(audiences):
        raise NotAuthenticatedError(
            f"the token is not meant for FluxUp: request it with an audience of "
            f"{', '.join(audiences)} (`kubectl create token <serviceaccount> "
            f"--audience {audiences[0]}`)")
    user = status.get("user") or {}
    username = user.get("username")
    if not isinstance(username, str) or not username:
        raise NotAuthenticatedError("the API server authenticated the token but named no user")
    raw_extra = user.get("extra")
    extra: Mapping[str, Any] = raw_extra if isinstance(raw_extra, Mapping) else {}
    uid = user.get("uid")
    return Sender(
        username=username,
        uid=uid if isinstance(uid, str) else "",
        groups=_strings(user.get("groups")),
        extra=tuple(sorted((str(k), _strings(v)) for k, v in extra.items())),
    )


def build_access_review(sender: Sender) -> dict[str, Any]:
    """The ``SubjectAccessReview``: may ``sender`` create ``managedapps/report``
    (cluster-wide)?"""
    user: dict[str, Any] = {"user": sender.username}
    if sender.uid:
        user["uid"] = sender.uid
    if sender.groups:
        user["groups"] = list(sender.groups)
    if sender.extra:
        user["extra"] = {k: list(v) for k, v in sender.extra}
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            **user,
            "resourceAttributes": {"group": GROUP, "resource": REPORT_RESOURCE,
                                   "subresource": REPORT_SUBRESOURCE, "verb": REPORT_VERB},
        },
    }


def determine_allowed(review: Mapping[str, Any], sender: Sender) -> None:
    """Return if the created ``SubjectAccessReview`` allows the report; else raise
    :class:`NotAuthorizedError` saying which rule is missing."""
    status = review.get("status") or {}
    if status.get("allowed") is True and status.get("denied") is not True:
        return
    raise NotAuthorizedError(
        f"{sender.username} may not send Renovate reports: it needs RBAC verb "
        f"{REPORT_VERB!r} on {REPORT_RESOURCE}/{REPORT_SUBRESOURCE} in {GROUP} cluster-wide "
        f"(bind the ClusterRole fluxup-report-sender with a ClusterRoleBinding)")
