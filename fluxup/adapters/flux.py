"""Act on Flux objects: request reconciles, approve and release held objects.

Used by the UpgradeRequest reconciler. Every write uses FluxUp's field manager and a
JSON merge patch of exactly the fields FluxUp owns, so Flux's own server-side applies
keep owning the rest.
"""

from __future__ import annotations

import datetime as dt

from fluxup.adapters.kube import Kube, Resource
from fluxup.api import annotations as ann

__all__ = ["REQUESTED_AT", "approve_and_release", "mark_released", "request_reconcile"]

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def request_reconcile(kube: Kube, res: Resource, namespace: str, name: str) -> None:
    """Ask the Flux controller owning ``res`` to reconcile it now."""
    await kube.merge_patch(res, namespace, name,
                           {"metadata": {"annotations": {REQUESTED_AT: _now_text()}}})


async def approve_and_release(
    kube: Kube, res: Resource, namespace: str, name: str, identity_json: str, request: str
) -> None:
    """Write ``fluxup.dev/approved`` for ``identity_json`` and un-suspend, in one patch."""
    await kube.merge_patch(res, namespace, name, {
        "metadata": {"annotations": {
            ann.APPROVED: identity_json,
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
