"""Read helm-controller's status of a HelmRelease: released, still working, or failed.

:func:`determine_helm_progress` decides the Upgrading phase of an UpgradeRequest from
the HelmRelease object alone: the version it should run (``target_version``), the
``reconcile.fluxcd.io/resetAt`` token FluxUp gave it, and helm-controller's own
remediation settings. A failed attempt is final only when helm-controller will not try
again by itself: ``Stalled``, or more failures than ``spec.upgrade.remediation.retries``
(``spec.install`` for a first install; a negative value retries forever). Called by
:mod:`fluxup.reconcile.upgrade_release`. Pure; no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fluxup.api.annotations import RESET_AT
from fluxup.logic.identity import normalize_chart_version

__all__ = [
    "FAILURE_REASONS",
    "HelmProgress",
    "HelmState",
    "determine_helm_progress",
    "remediation_retries",
]

#: ``Ready=False`` reasons that report a failed release attempt.
FAILURE_REASONS = frozenset({
    "UpgradeFailed", "InstallFailed", "RetriesExceeded", "RollbackSucceeded",
    "UninstallSucceeded", "TestFailed", "ArtifactFailed", "InitFailed",
})


class HelmState(enum.Enum):
    RELEASED = "released"
    WAITING = "waiting"
    FAILED = "failed"


@dataclass(frozen=True)
class HelmProgress:
    """What helm-controller reports, in one word and a sentence for the user."""

    state: HelmState
    message: str


def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, dict)}


def remediation_retries(spec: Mapping[str, Any], installed: bool) -> int:
    """helm-controller's retry budget for the next attempt (its default is 0)."""
    action = (spec.get("upgrade") if installed else spec.get("install")) or {}
    retries = (action.get("remediation") or {}).get("retries")
    return int(retries) if isinstance(retries, int) else 0


def _running_version(latest: Mapping[str, Any]) -> str:
    # charts from OCI carry the artifact digest as build metadata: 1.1.0+c90e84779b40
    return normalize_chart_version(str(latest.get("chartVersion", "")).split("+", 1)[0])


def determine_helm_progress(hr: Mapping[str, Any], target_version: str | None) -> HelmProgress:
    """Released (Ready at the current generation, running the target), waiting, or
    failed beyond helm-controller's own remediation."""
    meta = hr.get("metadata") or {}
    status = hr.get("status") or {}
    reset = (meta.get("annotations") or {}).get(RESET_AT)
    if reset and status.get("lastHandledResetAt") != reset:
        return HelmProgress(HelmState.WAITING, "waiting for helm-controller to take up the release")
    generation = meta.get("generation")
    current_gen = status.get("observedGeneration") == generation
    history = status.get("history") or []
    latest: Mapping[str, Any] = history[0] if history and isinstance(history[0], dict) else {}
    version_ok = not target_version or _running_version(latest) == normalize_chart_version(
        target_version.split("+", 1)[0]
    )
    conditions = _conditions(status)
    ready, stalled = conditions.get("Ready") or {}, conditions.get("Stalled") or {}
    if (
        current_gen
        and ready.get("status") == "True"
        and version_ok
        and latest.get("status", "deployed") == "deployed"
    ):
        return HelmProgress(HelmState.RELEASED, "helm-controller released the target")
    # helm-controller may leave status.observedGeneration behind on a failed attempt;
    # its conditions carry the generation they describe
    about_now = current_gen or ready.get("observedGeneration") == generation
    reason = str(ready.get("reason") or "Progressing")
    detail = f"{reason}: {ready.get('message') or ''}".strip().rstrip(":")
    if about_now and stalled.get("status") == "True":
        return HelmProgress(HelmState.FAILED, f"helm-controller: {detail} (stalled)")
    if about_now and ready.get("status") == "False" and reason in FAILURE_REASONS:
        installed = bool(history)
        failures = int(status.get("upgradeFailures" if installed else "installFailures") or 0)
        retries = remediation_retries(hr.get("spec") or {}, installed)
        # a failure helm-controller does not count (e.g. a chart that fails to render
        # never creates a release) is not one its remediation retries: it only repeats
        counted = failures >= 1
        if reason != "RetriesExceeded" and counted and (retries < 0 or failures <= retries):
            return HelmProgress(
                HelmState.WAITING,
                f"helm-controller retries ({failures} of "
                f"{'unlimited' if retries < 0 else retries + 1} attempts failed): {detail}",
            )
        return HelmProgress(HelmState.FAILED, f"helm-controller: {detail}")
    return HelmProgress(HelmState.WAITING, f"waiting for helm-controller: {detail}")
