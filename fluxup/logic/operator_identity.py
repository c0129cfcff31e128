"""Who the operator really is, against who the gate trusts (DESIGN.md §2, rule 5).

The admission gate lets exactly one user write ``fluxup.dev/approved``/``released`` and
remove the ``fluxup.dev/managed-app`` label: the operator's, configured as
``FLUXUP_OPERATOR_USERNAME`` (the webhook gets the same value). A kustomize
``namePrefix``, another namespace or a renamed ServiceAccount changes the real username,
and the operator would then be denied its own writes, holding every release forever. So
at start-up the operator asks the API server who it is (a SelfSubjectReview) and refuses
to start on a mismatch, naming both and how to fix it. Pure: the answer is parsed and
compared here; :mod:`fluxup.operator` asks.
"""

from __future__ import annotations

from collections.abc import Mapping

from fluxup.errors import ConfigError

__all__ = ["build_self_subject_review", "check_operator_username", "username_of_review"]


def build_self_subject_review() -> dict[str, str]:
    """The body of a SelfSubjectReview (authentication.k8s.io/v1): nothing but the kind."""
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


def username_of_review(review: Mapping[str, object]) -> str:
    """``status.userInfo.username`` of the API server's answer."""
    status = review.get("status")
    info = status.get("userInfo") if isinstance(status, Mapping) else None
    username = info.get("username") if isinstance(info, Mapping) else None
    if not isinstance(username, str) or not username:
        raise ConfigError("the API server's SelfSubjectReview named no username; FluxUp "
                          "cannot tell which user it acts as")
    return username


def check_operator_username(configured: str, actual: str) -> None:
    """Raise :class:`ConfigError` unless the operator acts as the configured user."""
    if configured == actual:
        return
    raise ConfigError(
        f"FluxUp's operator acts as {actual!r}, but FLUXUP_OPERATOR_USERNAME (the only user "
        f"the admission gate lets approve releases) is {configured!r}: the gate would deny "
        "the operator's own writes and every held release would stay held. Set "
        f"FLUXUP_OPERATOR_USERNAME={actual} for the operator and the webhook "
        "(--operator-username), or run the operator as that user (its ServiceAccount "
        "name and namespace, e.g. after a kustomize namePrefix or another namespace)"
    )
