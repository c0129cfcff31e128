"""An in-memory :class:`~fluxup.adapters.kube.Kube` for unit tests of the reconcile layer.

It stands in for the Kubernetes API server (kube-apiserver + etcd) where a unit test
needs one without a sandbox: objects are plain dicts keyed by resource, namespace and
name, and the API semantics the reconcilers rely on are kept:

* ``create`` answers 409 (:class:`KubeConflict`) for an existing name, fills in
  ``uid``, ``resourceVersion``, ``generation`` and ``creationTimestamp``;
* ``merge_patch`` is an RFC 7386 JSON merge patch; a ``metadata.resourceVersion`` in the
  patch is a precondition (409 on mismatch); for kinds with a status subresource
  (:data:`STATUS_SUBRESOURCE`) the main resource ignores ``status`` and ``sub="status"``
  changes only ``status``; ``generation`` grows when ``spec`` changes;
* ``delete`` of an object with finalizers only sets ``deletionTimestamp``; removing
  the last finalizer of such an object deletes it;
* ``list`` filters by equality label selectors; every call returns a deep copy, so a
  reconciler never shares state with the store.

It is a fake only because a unit test cannot start an apiserver; behaviour that needs
admission, field ownership or watches is tested in ``tests/integration`` on the sandbox.
``fail`` lets a test make the next calls of one verb raise, to exercise error paths.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import uuid
from collections.abc import Mapping

from fluxup.adapters.kube import Obj, R, Resource
from fluxup.errors import KubeConflict, KubeError, KubeNotFound
from fluxup.logic.merge_patch import apply_merge_patch

__all__ = ["STATUS_SUBRESOURCE", "MemoryKube"]

#: Resources whose ``status`` is written only through the ``status`` subresource.
STATUS_SUBRESOURCE = frozenset({
    R.MANAGEDAPP, R.UPGRADEREQUEST, R.ROLLBACKREQUEST, R.HELMRELEASE, R.OCIREPOSITORY,
    R.HELMREPOSITORY, R.GITREPOSITORY, R.KUSTOMIZATION, R.SNAPSHOT, R.DEPLOYMENT,
    R.STATEFULSET, R.PVC, R.POD,
})

_KINDS = {
    R.PVC: "PersistentVolumeClaim", R.PV: "PersistentVolume", R.POD: "Pod",
    R.SECRET: "Secret", R.EVENT: "Event", R.NAMESPACE: "Namespace",
    R.DEPLOYMENT: "Deployment", R.STATEFULSET: "StatefulSet",
    R.STORAGECLASS: "StorageClass", R.SNAPSHOT: "VolumeSnapshot",
    R.SNAPSHOTCLASS: "VolumeSnapshotClass", R.HELMRELEASE: "HelmRelease",
    R.OCIREPOSITORY: "OCIRepository", R.HELMREPOSITORY: "HelmRepository",
    R.GITREPOSITORY: "GitRepository", R.KUSTOMIZATION: "Kustomization",
    R.MANAGEDAPP: "ManagedApp", R.UPGRADEREQUEST: "UpgradeRequest",
    R.ROLLBACKREQUEST: "RollbackRequest",
}

Key = tuple[Resource, str, str]


class MemoryKube:
    """The Kubernetes API as a dict (see the module docstring for what is kept)."""

    def __init__(self) -> None:
        self.objects: dict[Key, Obj] = {}
        self.calls: list[tuple[str, str, str]] = []
        self._versions = itertools.count(1)
        self._failures: dict[str, list[KubeError]] = {}
        #: apiVersions discovery answers 404 for (a cluster that stopped serving them)
        self.unserved: set[str] = set()

    # --- test helpers -----------------------------------------------------------------

    def put(self, res: Resource, obj: Obj) -> Obj:
        """Store ``obj`` as is (status included), as if another controller wrote it."""
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(next(self._versions))
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", _KINDS.get(res, res.plural))
        self.objects[self._key(res, meta.get("namespace"), meta["name"])] = copy.deepcopy(obj)
        return copy.deepcopy(obj)

    def peek(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        """The stored object (a copy), without recording a call."""
        obj = self.objects.get(self._key(res, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def all(self, res: Resource, namespace: str | None = None) -> list[Obj]:
        return [copy.deepcopy(o) for (r, ns, _), o in sorted(self.objects.items(),
                                                            key=lambda kv: kv[0][1:])
                if r == res and (namespace is None or ns == namespace)]

    def fail(self, verb: str, error: KubeError, times: int = 1) -> None:
        """Make the next ``times`` calls of ``verb`` raise ``error``."""
        self._failures.setdefault(verb, []).extend([error] * times)

    # --- the Kube Protocol ------------------------------------------------------------

    async def get(self, res: Resource, namespace: str | None, name: str) -> Obj:
        self._enter("get", res, name)
        obj = self.objects.get(self._key(res, namespace, name))
        if obj is None:
            raise KubeNotFound(f"get {res.plural} {name}: not found (HTTP 404)")
        return copy.deepcopy(obj)

    async def find(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        try:
            return await self.get(res, namespace, name)
        except KubeNotFound:
            return None

    async def list(
        self, res: Resource, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Obj]:
        self._enter("list", res, "")
        out = []
        for obj in self.all(res, namespace if res.namespaced else None):
            have = (obj.get("metadata") or {}).get("labels") or {}
            if all(have.get(k) == v for k, v in (labels or {}).items()):
                out.append(obj)
        return out

    async def create(self, res: Resource, namespace: str | None, body: Obj) -> Obj:
        meta = dict(body.get("metadata") or {})
        name = meta.get("name") or f"{meta.get('generateName', 'obj-')}{uuid.uuid4().hex[:5]}"
        self._enter("create", res, name)
        key = self._key(res, namespace, name)
        if key in self.objects:
            raise KubeConflict(f"create {res.plural} {name}: already exists (HTTP 409)")
        obj = copy.deepcopy(body)
        meta.update(name=name, uid=str(uuid.uuid4()), generation=1,
                    creationTimestamp=_now())
        if res.namespaced:
            meta["namespace"] = namespace
        meta.pop("deletionTimestamp", None)
        obj["metadata"] = meta
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", _KINDS.get(res, res.plural))
        if res in STATUS_SUBRESOURCE:
            obj.pop("status", None)
        return self._store(key, obj)

    async def merge_patch(
        self, res: Resource, namespace: str | None, name: str, patch: Obj, sub: str = ""
    ) -> Obj:
        self._enter("merge_patch", res, name)
        key = self._key(res, namespace, name)
        current = self.objects.get(key)
        if current is None:
            raise KubeNotFound(f"patch {res.plural} {name}: not found (HTTP 404)")
        patch = copy.deepcopy(patch)
        wanted = (patch.get("metadata") or {}).pop("resourceVersion", None)
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            raise KubeConflict(
                f"patch {res.plural} {name}: the object has been modified (HTTP 409)"
            )
        return self._update(res, key, current, patch, sub)

    async def apply(
        self, res: Resource, namespace: str | None, body: Obj, manager: str, sub: str = ""
    ) -> Obj:
        name = body["metadata"]["name"]
        self._enter("apply", res, name)
        key = self._key(res, namespace, name)
        current = self.objects.get(key)
        if current is None:
            if sub:
                raise KubeNotFound(f"apply {res.plural} {name}: not found (HTTP 404)")
            return await self.create(res, namespace, body)
        return self._update(res, key, current, copy.deepcopy(body), sub)

    async def delete(self, res: Resource, namespace: str | None, name: str) -> None:
        self._enter("delete", res, name)
        key = self._key(res, namespace, name)
        current = self.objects.get(key)
        if current is None:
            return
        if current["metadata"].get("finalizers"):
            if not current["metadata"].get("deletionTimestamp"):
                current = copy.deepcopy(current)
                current["metadata"]["deletionTimestamp"] = _now()
                self._store(key, current)
            return
        del self.objects[key]

    async def served_kinds(self, api_version: str) -> frozenset[str] | None:
        """The kinds of :data:`_KINDS` under ``api_version``, unless it is ``unserved``."""
        self._enter("discover", Resource("", api_version, ""), api_version)
        kinds = frozenset(k for r, k in _KINDS.items() if r.api_version == api_version)
        return None if api_version in self.unserved or not kinds else kinds

    # --- internals --------------------------------------------------------------------

    def _key(self, res: Resource, namespace: str | None, name: str) -> Key:
        return (res, (namespace or "") if res.namespaced else "", name)

    def _enter(self, verb: str, res: Resource, name: str) -> None:
        self.calls.append((verb, res.plural, name))
        pending = self._failures.get(verb)
        if pending:
            raise pending.pop(0)

    def _update(self, res: Resource, key: Key, current: Obj, patch: Obj, sub: str) -> Obj:
        if sub == "status":
            patch = {"status": patch.get("status")} if "status" in patch else {}
        elif res in STATUS_SUBRESOURCE:
            patch.pop("status", None)
        new = apply_merge_patch(current, patch)
        if new.get("spec") != current.get("spec"):
            new["metadata"]["generation"] = int(current["metadata"].get("generation") or 1) + 1
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            del self.objects[key]
            return copy.deepcopy(new)
        return self._store(key, new)

    def _store(self, key: Key, obj: Obj) -> Obj:
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[key] = obj
        return copy.deepcopy(obj)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
