"""The operations a person starts from the UI or API: their objects and their warnings.

Pure builders used by :mod:`fluxup.ui`: the UpgradeRequest and RollbackRequest bodies
(created *as the user*; the operator does the rest), input validation with specific
messages, the snapshot sets a rollback can return to, and the data-loss warning that
names exactly what a rollback discards. No I/O.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fluxup.api.constants import API_VERSION, ROLLBACK_REQUEST, UPGRADE_REQUEST
from fluxup.api.upgraderequest import UpgradePhase, UpgradeRequest
from fluxup.errors import ConfigError
from fluxup.logic.inbox import REQUESTED_BY

__all__ = [
    "DataLossWarning",
    "SnapshotSet",
    "build_data_loss_warning",
    "build_rollback_request",
    "build_snapshot_sets",
    "build_upgrade_request",
    "parse_upgrade_input",
]

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@:-]{0,127}$")
_PATH = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class UpgradeInput:
    """A validated upgrade request from a form or JSON body."""

    version: str | None
    images: tuple[tuple[str, str], ...]
    dry_run: bool


def parse_upgrade_input(data: Mapping[str, Any]) -> UpgradeInput:
    """Validate ``{"version"?, "images"?: {path: tag}, "dryRun"?}``; raise ConfigError."""
    unknown = set(data) - {"version", "images", "dryRun"}
    if unknown:
        raise ConfigError(f"unknown field(s) {sorted(unknown)}; allowed: version, images, dryRun")
    version = data.get("version") or None
    if version is not None and (not isinstance(version, str) or not _VERSION.match(version)):
        raise ConfigError(f"version {version!r} is not a valid chart version or tag")
    images_in = data.get("images") or {}
    if not isinstance(images_in, Mapping):
        raise ConfigError("images must be an object of value path to tag")
    images = []
    for path, tag in sorted(images_in.items()):
        if not isinstance(path, str) or not _PATH.match(path):
            raise ConfigError(f"image value path {path!r} is not dotted (image.tag)")
        if not isinstance(tag, str) or not _VERSION.match(tag):
            raise ConfigError(f"image tag {tag!r} at {path} is not a valid tag")
        images.append((path, tag))
    dry_run = data.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise ConfigError("dryRun must be true or false")
    return UpgradeInput(version, tuple(images), dry_run)


def _check_name(what: str, name: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(f"{what} {name!r} is not a valid Kubernetes object name")


def build_upgrade_request(namespace: str, app: str, wanted: UpgradeInput,
                          user: str) -> dict[str, Any]:
    """An UpgradeRequest (origin ``ui``) for ``app``, recording who asked."""
    _check_name("app", app)
    spec: dict[str, Any] = {"managedAppRef": {"name": app}, "origin": "ui"}
    if wanted.version:
        spec["targetVersion"] = wanted.version
    if wanted.images:
        spec["targetImages"] = [{"valuesPath": p, "tag": t} for p, t in wanted.images]
    if wanted.dry_run:
        spec["dryRun"] = True
    return {
        "apiVersion": API_VERSION, "kind": UPGRADE_REQUEST.kind,
        "metadata": {"generateName": f"{app[:40]}-{'preview' if wanted.dry_run else 'ui'}-",
                     "namespace": namespace, "annotations": {REQUESTED_BY: user}},
        "spec": spec,
    }


def build_rollback_request(namespace: str, upgrade: str | None, snapshot: str | None,
                           user: str) -> dict[str, Any]:
    """A RollbackRequest (origin ``ui``) of one upgrade or one snapshot's set."""
    if (upgrade is None) == (snapshot is None):
        raise ConfigError("name exactly one of upgradeRequest or snapshot to roll back to")
    spec: dict[str, Any] = {"origin": "ui"}
    if upgrade is not None:
        _check_name("upgradeRequest", upgrade)
        spec["upgradeRequestRef"] = {"name": upgrade}
    if snapshot is not None:
        _check_name("snapshot", snapshot)
        spec["snapshotRef"] = {"name": snapshot}
    base = (upgrade or snapshot or "")[:40]
    return {
        "apiVersion": API_VERSION, "kind": ROLLBACK_REQUEST.kind,
        "metadata": {"generateName": f"{base}-rollback-", "namespace": namespace,
                     "annotations": {REQUESTED_BY: user}},
        "spec": spec,
    }


@dataclass(frozen=True)
class SnapshotSet:
    """The snapshots one upgrade took: what a rollback returns to."""

    upgrade_request: str
    from_version: str | None
    to_version: str | None
    taken_at: dt.datetime | None
    phase: str
    snapshots: tuple[tuple[str, str, bool], ...]  # (snapshot, pvc, ready)

    @property
    def restorable(self) -> bool:
        return bool(self.snapshots) and all(ready for _, _, ready in self.snapshots)


def build_snapshot_sets(upgrades: Iterable[UpgradeRequest], app: str) -> tuple[SnapshotSet, ...]:
    """Snapshot sets of ``app``'s upgrades that got as far as taking snapshots, newest first."""
    sets = []
    for up in upgrades:
        if up.spec.managed_app_ref.name != app or not up.status.snapshots:
            continue
        sets.append(SnapshotSet(
            upgrade_request=up.metadata.name,
            from_version=up.status.previous_identity.version if up.status.previous_identity
            else None,
            to_version=up.status.target_identity.version if up.status.target_identity else None,
            taken_at=up.status.started_at or up.metadata.creation_timestamp,
            phase=str(up.status.phase or UpgradePhase.PENDING),
            snapshots=tuple((s.name, s.pvc, s.ready_to_use) for s in up.status.snapshots)))
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return tuple(sorted(sets, key=lambda s: s.taken_at or epoch, reverse=True))


@dataclass(frozen=True)
class DataLossWarning:
    """What a rollback to a snapshot set throws away, in words a person can act on."""

    pvcs: tuple[str, ...]
    since: dt.datetime | None
    text: str


def build_data_loss_warning(chosen: SnapshotSet, namespace: str,
                            now: dt.datetime) -> DataLossWarning:
    """Name every volume reverted and the time after which its writes are lost."""
    pvcs = tuple(sorted({pvc for _, pvc, _ in chosen.snapshots}))
    when = chosen.taken_at.strftime("%Y-%m-%d %H:%M:%S UTC") if chosen.taken_at else "the snapshot"
    ago = ""
    if chosen.taken_at is not None:
        minutes = max(0, int((now - chosen.taken_at).total_seconds() // 60))
        ago = f" ({minutes} minutes ago)"
    text = (f"Everything written to {', '.join(f'{namespace}/{p}' for p in pvcs)} after "
            f"{when}{ago} will be lost: the volumes are recreated from the snapshots taken "
            f"before the upgrade to {chosen.to_version or 'the new version'}, and the app "
            f"returns to {chosen.from_version or 'its previous version'}. The current volumes "
            "are retained (not deleted) until an administrator removes them.")
    return DataLossWarning(pvcs, chosen.taken_at, text)
