"""Snapshot retention: delete pre-upgrade snapshot sets the ManagedApp's policy no longer
keeps (``volumeSnapshots.retentionPolicy``: ``keepLast``, ``maxAge``).

Runs after every successful upgrade (a new set may push an old one out) and, when the
policy has a ``maxAge``, on the ManagedApp's timer too, so sets expire on time even when
no upgrade happens. Never deletes the newest set, a set an UpgradeRequest in flight took
or one a RollbackRequest in flight restores (:func:`fluxup.logic.snapshots.select_expired`
decides; this module reads the cluster and deletes).
"""

from __future__ import annotations

import logging

from fluxup.adapters.kube import Obj, R
from fluxup.api.managedapp import ManagedApp
from fluxup.api.upgraderequest import TERMINAL_UPGRADE_PHASES
from fluxup.logic import snapshots
from fluxup.reconcile.context import Context

__all__ = ["prune_snapshots"]

log = logging.getLogger(__name__)

_TERMINAL = frozenset(t.value for t in TERMINAL_UPGRADE_PHASES)


async def prune_snapshots(ctx: Context, app: ManagedApp, running: str | None = None) -> list[str]:
    """Delete ``app``'s snapshot sets beyond its retention policy; their names.
    ``running``: an UpgradeRequest whose set is kept whatever its phase."""
    kube = ctx.kube
    namespace = app.metadata.namespace or ""
    policy = app.spec.volume_snapshots.retention_policy
    found: list[Obj] = []
    for pvc_namespace in {pvc.namespace for pvc in app.status.pvcs} or {namespace}:
        found += await kube.list(
            R.SNAPSHOT, pvc_namespace,
            {snapshots.APP_LABEL: snapshots.label_safe(app.metadata.name or "")},
        )
    if not found:
        return []
    protected = {running} if running else set()
    protected |= {
        r["metadata"]["name"] for r in await kube.list(R.UPGRADEREQUEST, namespace)
        if (r.get("status") or {}).get("phase") not in _TERMINAL
    }
    # a rollback in flight needs the set it restores (its restored claims name it)
    protected |= {
        str((r.get("status") or {}).get("upgradeRequest"))
        for r in await kube.list(R.ROLLBACKREQUEST, namespace)
        if (r.get("status") or {}).get("upgradeRequest")
        and (r.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    }
    max_age = policy.max_age.to_timedelta() if policy.max_age else None
    expired = snapshots.select_expired(found, policy.keep_last, max_age, ctx.now(), protected)
    by_name = {s["metadata"]["name"]: s["metadata"]["namespace"] for s in found}
    for name in expired:
        await kube.delete(R.SNAPSHOT, by_name[name], name)
    if expired:
        log.info("%s/%s: deleted snapshot(s) %s (retention policy)", namespace,
                 app.metadata.name, ", ".join(expired))
    return expired
