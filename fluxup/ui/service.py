"""What the pages and the JSON API do, as the logged-in user: load, start, delete.

Called by :mod:`fluxup.ui.routes_pages` and :mod:`fluxup.ui.routes_api` with a
:class:`~fluxup.adapters.kube.Kube` that impersonates the user, so Kubernetes RBAC
decides every read and write (a refusal surfaces as
:class:`~fluxup.errors.KubeForbidden`, turned into a 403 by the routes). Each write is
also recorded as an audit Event naming the user, written with the operator's own
identity (a person need not be allowed to write Events). Decisions come from
:mod:`fluxup.logic.inbox` and :mod:`fluxup.logic.operations`; nothing here renders.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from fluxup.adapters.events import EventRecorder
from fluxup.adapters.kube import Kube, Obj, R
from fluxup.api.managedapp import ManagedApp
from fluxup.api.rollbackrequest import RollbackRequest
from fluxup.api.upgraderequest import UpgradeRequest
from fluxup.errors import ConfigError, InvalidObjectError, KubeForbidden, KubeNotFound
from fluxup.logic.inbox import Inbox, build_inbox
from fluxup.logic.operations import (
    SnapshotSet,
    build_rollback_request,
    build_snapshot_sets,
    build_upgrade_request,
    parse_upgrade_input,
)
from fluxup.logic.snapshots import APP_LABEL, PVC_ANNOTATION, REQUEST_LABEL

__all__ = ["AppDetail", "SnapshotRow", "app_namespaces", "delete_snapshot", "load_app",
           "load_inbox", "load_request", "load_snapshots", "start_rollback", "start_upgrade"]

log = logging.getLogger(__name__)


def _parse_all(kind: type[Any], items: list[Obj]) -> list[Any]:
    out = []
    for item in items:
        try:
            out.append(kind.from_dict(item))
        except InvalidObjectError as exc:  # one broken object must not hide the others
            log.warning("skipping unreadable %s: %s", kind.__name__, exc)
    return out


async def _lists(kube: Kube, namespace: str | None) -> tuple[list[Obj], list[Obj], list[Obj]]:
    apps, ups, rbs = await asyncio.gather(
        kube.list(R.MANAGEDAPP, namespace), kube.list(R.UPGRADEREQUEST, namespace),
        kube.list(R.ROLLBACKREQUEST, namespace))
    return apps, ups, rbs


async def app_namespaces(operator: Kube) -> list[str]:
    """Namespaces that hold ManagedApps, read with the operator's identity (names only)."""
    items = await operator.list(R.MANAGEDAPP)
    return sorted({(i.get("metadata") or {}).get("namespace", "") for i in items} - {""})


async def load_inbox(kube: Kube, namespace: str | None = None,
                     operator: Kube | None = None) -> Inbox:
    """The inbox as this user sees it: one cluster-wide list when RBAC allows it, else
    one list per namespace holding ManagedApps, skipping those the user may not read."""
    try:
        apps, ups, rbs = await _lists(kube, namespace)
    except KubeForbidden:
        if namespace is not None or operator is None:
            raise
        apps, ups, rbs = [], [], []
        for ns in await app_namespaces(operator):
            try:
                more = await _lists(kube, ns)
            except KubeForbidden:
                continue
            apps += more[0]
            ups += more[1]
            rbs += more[2]
    return build_inbox(_parse_all(ManagedApp, apps), _parse_all(UpgradeRequest, ups),
                       _parse_all(RollbackRequest, rbs))


@dataclass(frozen=True)
class SnapshotRow:
    """A VolumeSnapshot FluxUp took."""

    namespace: str
    name: str
    app: str
    upgrade_request: str
    pvc: str
    ready: bool
    size: str | None
    created: str | None
    error: str | None


def _snapshot_row(obj: Obj) -> SnapshotRow:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    labels = meta.get("labels") or {}
    return SnapshotRow(
        namespace=meta.get("namespace", ""), name=meta.get("name", ""),
        app=labels.get(APP_LABEL, ""), upgrade_request=labels.get(REQUEST_LABEL, ""),
        pvc=(meta.get("annotations") or {}).get(PVC_ANNOTATION)
        or (obj.get("spec") or {}).get("source", {}).get("persistentVolumeClaimName", ""),
        ready=bool(status.get("readyToUse")), size=status.get("restoreSize"),
        created=status.get("creationTime") or meta.get("creationTimestamp"),
        error=(status.get("error") or {}).get("message"))


async def load_snapshots(kube: Kube, namespace: str | None = None,
                         app: str | None = None) -> list[SnapshotRow]:
    """FluxUp's VolumeSnapshots (those carrying its app label), newest first."""
    items = await kube.list(R.SNAPSHOT, namespace)
    rows = [_snapshot_row(o) for o in items
            if APP_LABEL in ((o.get("metadata") or {}).get("labels") or {})]
    if app is not None:
        rows = [r for r in rows if r.app == app]
    return sorted(rows, key=lambda r: r.created or "", reverse=True)


@dataclass(frozen=True)
class AppDetail:
    """Everything the app page shows."""

    app: ManagedApp
    raw: Obj
    upgrades: list[UpgradeRequest]
    rollbacks: list[RollbackRequest]
    snapshot_sets: tuple[SnapshotSet, ...]
    values: Any
    helm_release_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def load_app(kube: Kube, namespace: str, name: str) -> AppDetail:
    # one round trip for what needs only the name; the HelmRelease needs the app's spec
    raw, ups_raw, rbs_raw = await asyncio.gather(kube.get(R.MANAGEDAPP, namespace, name),
                                                 kube.list(R.UPGRADEREQUEST, namespace),
                                                 kube.list(R.ROLLBACKREQUEST, namespace))
    app = ManagedApp.from_dict(raw)
    upgrades = [u for u in _parse_all(UpgradeRequest, ups_raw)
                if u.spec.managed_app_ref.name == name]
    epoch = ""
    upgrades.sort(key=lambda u: str(u.metadata.creation_timestamp or epoch), reverse=True)
    names = {u.metadata.name for u in upgrades}
    rollbacks = [r for r in _parse_all(RollbackRequest, rbs_raw)
                 if r.status.managed_app == name
                 or (r.spec.upgrade_request_ref and r.spec.upgrade_request_ref.name in names)]
    ref = app.spec.helm_release_ref
    values: Any = None
    hr_error = None
    try:
        hr = await kube.get(R.HELMRELEASE, ref.namespace_or(namespace), ref.name)
        values = (hr.get("spec") or {}).get("values") or {}
    except KubeNotFound:
        hr_error = f"HelmRelease {ref.namespace_or(namespace)}/{ref.name} not found"
    except Exception as exc:  # shown on the page; the rest of the page still works
        hr_error = str(exc)
    return AppDetail(app, raw, upgrades, rollbacks, build_snapshot_sets(upgrades, name),
                     values, hr_error)


async def load_request(kube: Kube, kind: str, namespace: str,
                       name: str) -> UpgradeRequest | RollbackRequest:
    if kind == "upgrades":
        return UpgradeRequest.from_dict(await kube.get(R.UPGRADEREQUEST, namespace, name))
    if kind == "rollbacks":
        return RollbackRequest.from_dict(await kube.get(R.ROLLBACKREQUEST, namespace, name))
    raise ConfigError(f"unknown request kind {kind!r}; use upgrades or rollbacks")


async def start_upgrade(kube: Kube, audit: EventRecorder, namespace: str, app: str,
                        data: dict[str, Any], user: str) -> UpgradeRequest:
    """Create an UpgradeRequest as ``user`` (after checking the app exists) and audit it."""
    wanted = parse_upgrade_input(data)
    await kube.get(R.MANAGEDAPP, namespace, app)  # 404 (or 403) before anything is made
    created = await kube.create(R.UPGRADEREQUEST, namespace,
                                build_upgrade_request(namespace, app, wanted, user))
    what = "previewed (dry run)" if wanted.dry_run else "requested"
    target = wanted.version or ", ".join(f"{p}={t}" for p, t in wanted.images) or \
        "the available update"
    await audit.record(created, "PreviewRequested" if wanted.dry_run else "UpgradeRequested",
                       f"{user} {what} an upgrade of {namespace}/{app} to {target} in the "
                       f"FluxUp UI (UpgradeRequest {created['metadata']['name']})")
    return UpgradeRequest.from_dict(created)


async def start_rollback(kube: Kube, audit: EventRecorder, namespace: str,
                         data: dict[str, Any], user: str) -> RollbackRequest:
    """Create a RollbackRequest as ``user`` and audit it."""
    unknown = set(data) - {"upgradeRequest", "snapshot"}
    if unknown:
        raise ConfigError(f"unknown field(s) {sorted(unknown)}; allowed: upgradeRequest, "
                          "snapshot")
    upgrade = data.get("upgradeRequest") or None
    snapshot = data.get("snapshot") or None
    body = build_rollback_request(namespace, upgrade, snapshot, user)
    if upgrade is not None:
        await kube.get(R.UPGRADEREQUEST, namespace, str(upgrade))
    else:
        await kube.get(R.SNAPSHOT, namespace, str(snapshot))
    created = await kube.create(R.ROLLBACKREQUEST, namespace, body)
    await audit.record(created, "RollbackRequested",
                       f"{user} requested a rollback of {namespace}/{upgrade or snapshot} in "
                       f"the FluxUp UI (RollbackRequest {created['metadata']['name']})")
    return RollbackRequest.from_dict(created)


async def delete_snapshot(kube: Kube, audit: EventRecorder, namespace: str, name: str,
                          user: str) -> None:
    """Delete one of FluxUp's VolumeSnapshots as ``user`` and audit it."""
    obj = await kube.get(R.SNAPSHOT, namespace, name)
    if APP_LABEL not in ((obj.get("metadata") or {}).get("labels") or {}):
        raise ConfigError(f"VolumeSnapshot {namespace}/{name} was not taken by FluxUp; "
                          "delete it with kubectl if you mean to")
    await kube.delete(R.SNAPSHOT, namespace, name)
    await audit.record(obj, "SnapshotDeleted",
                       f"{user} deleted VolumeSnapshot {namespace}/{name} in the FluxUp UI")
