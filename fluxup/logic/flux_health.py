"""Is Flux able to carry an upgrade? Judges the Flux objects an upgrade passes through.

An upgrade committed to Git only happens if Flux's controllers do their part: the
GitRepository fetches the commit, the Kustomization applies it, the chart source serves
the new chart. The preflight check ``flux-healthy``
(:mod:`fluxup.reconcile.upgrade_preflight`) reads those objects and asks
:func:`judge_flux_object` about each, so a broken or suspended Flux object stops the
upgrade *before* anything is committed or snapshotted, with the object's own reason,
instead of after a ten-minute AwaitingApply timeout. Pure; no I/O.

A missing Ready condition is no failure: Flux leaves some objects without one (a
``type: oci`` HelmRepository is never reconciled), and a new object has none yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["FluxObjectHealth", "judge_flux_object", "summarize_flux_health"]

#: Flux's messages can be long (a whole fetch error); status keeps a readable part.
MESSAGE_LIMIT = 200


@dataclass(frozen=True)
class FluxObjectHealth:
    """One Flux object's fitness: ``what`` names it (``Kustomization flux-system/apps``)."""

    what: str
    ok: bool
    detail: str

    def describe(self) -> str:
        return f"{self.what} {self.detail}"


def _condition(obj: Mapping[str, object], kind: str) -> Mapping[str, object] | None:
    status = obj.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    if not isinstance(conditions, list):
        return None
    return next((c for c in conditions
                 if isinstance(c, Mapping) and c.get("type") == kind), None)


def _why(cond: Mapping[str, object]) -> str:
    reason = str(cond.get("reason") or "").strip()
    message = " ".join(str(cond.get("message") or "").split())
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1] + "…"
    return ": ".join(part for part in (reason, message) if part) or "no reason given"


def judge_flux_object(what: str, obj: Mapping[str, object] | None) -> FluxObjectHealth:
    """``obj`` (a Kustomization, GitRepository, HelmRepository or OCIRepository, or None
    when it does not exist) can carry an upgrade: it exists, is not suspended, is not
    Stalled and is not Ready=False."""
    if obj is None:
        return FluxObjectHealth(what, False, "not found")
    spec = obj.get("spec")
    if isinstance(spec, Mapping) and spec.get("suspend") is True:
        return FluxObjectHealth(what, False, "is suspended (Flux applies nothing from it; "
                                "resume it with flux resume)")
    stalled = _condition(obj, "Stalled")
    if stalled is not None and stalled.get("status") == "True":
        return FluxObjectHealth(what, False, f"is stalled ({_why(stalled)})")
    ready = _condition(obj, "Ready")
    if ready is None:
        return FluxObjectHealth(what, True, "has no Ready condition yet")
    if ready.get("status") == "False":
        return FluxObjectHealth(what, False, f"is not Ready ({_why(ready)})")
    if ready.get("status") == "True":
        return FluxObjectHealth(what, True, "Ready")
    return FluxObjectHealth(what, True, "is reconciling")


def summarize_flux_health(judged: tuple[FluxObjectHealth, ...]) -> tuple[bool, str]:
    """All fit, and one line for the preflight check (the unfit ones first, alone)."""
    unfit = [j for j in judged if not j.ok]
    if unfit:
        return False, "; ".join(j.describe() for j in unfit)
    if not judged:
        return True, "no Flux objects to check"
    return True, "; ".join(j.describe() for j in judged)
