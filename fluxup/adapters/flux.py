"""Act on Flux objects: request reconciles, approve and release held objects.

Used by the UpgradeRequest reconciler. Every write uses FluxUp's field manager and a
JSON merge patch of exactly the fields FluxUp owns, so Flux's own server-side applies
keep owning the rest.
"""

from __future__ import annotations

import datetime as dt

from fluxup.adapters.kube import Kube, R, Resource
from fluxup.api import annotations as ann

__all__ = [
    "REQUESTED_AT",
    "RESET_AT",
    "approve_and_release",
    "mark_released",
    "request_reconcile",
    "request_retry",
]

REQUESTED_AT = ann.REQUESTED_AT
RESET_AT = ann.RESET_AT


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def request_reconcile(kube: Kube, res: Resource, namespace: str, name: str) -> None:
    """Ask the Flux controller owning ``res`` to reconcile it now."""
    await kube.merge_patch(res, namespace, name,
                           {"metadata": {"annotations": {REQUESTED_AT: _now_text()}}})


async def request_retry(kube: Kube, namespace: str, name: str) -> str:
    """Ask helm-controller to try a HelmRelease again now, past exhausted retries (a
    denial by line 2 of the gate counts as a failed attempt). Returns the token, which
    helm-controller copies to ``status.lastHandledResetAt`` once it acted on it."""
    token = _now_text()
    await kube.merge_patch(R.HELMRELEASE, namespace, name,
                           {"metadata": {"annotations": {REQUESTED_AT: token, RESET_AT: token}}})
    return token


async def approve_and_release(
    kube: Kube, res: Resource, namespace: str, name: str, approval: str, request: str
) -> None:
    """Write ``fluxup.dev/approved`` (``approval``: the identity bound to its request,
    see :func:`fluxup.logic.identity.build_approval`) and un-suspend, in one patch;
    ``request`` (the request's name) goes into ``fluxup.dev/upgrade-request``."""
    await kube.merge_patch(res, namespace, name, {
        "metadata": {"annotations": {
            ann.APPROVED: approval,
            ann.UPGRADE_REQUEST: request,
            REQUESTED_AT: _now_text(),
        }},
        "spec": {"suspend": False},
    })


async def mark_released(
    kube: Kube, res: Resource, namespace: str, name: str, identity_json: str
) -> None:
    """Record ``fluxup.dev/released`` after a successful release."""
    await kube.merge_patch(res, namespace, name,
                           {"metadata": {"annotations": {ann.RELEASED: identity_json}}})
