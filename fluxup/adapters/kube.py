"""A small, typed Kubernetes client over ``kubernetes_asyncio``'s REST transport.

Used by the reconcilers (and the UI) for every API call. Objects are plain dicts
addressed by :class:`Resource` (group, version, plural), so CRDs of any served version
(Flux, VolumeSnapshots, FluxUp's own) need no generated classes. Library exceptions are
translated into :mod:`fluxup.errors` here and nowhere else — API errors by status code,
transport errors (timeouts, connection resets) as :class:`~fluxup.errors.KubeError` —
and messages never contain request bodies (which can hold secrets).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from fluxup.errors import KubeConflict, KubeError, KubeForbidden, KubeNotFound

__all__ = ["Kube", "KubeApi", "Obj", "R", "Resource", "new_api_client"]

Obj = dict[str, Any]


def new_api_client(configuration: Any) -> ApiClient:
    """``kubernetes_asyncio``'s ApiClient for ``configuration``, without aiohttp's
    per-request look-ups in the environment.

    kubernetes_asyncio opens its aiohttp session with ``trust_env=True``, and aiohttp then
    reads ``~/.netrc`` and the proxy variables in a worker thread on *every* request: two
    thread hand-offs and a file read per Kubernetes call (measured: about a tenth of the
    operator's CPU at rest with 1,000 apps, plus the GIL hand-offs that slow the UI's
    thread). The proxy for the apiserver is looked up once here instead, from the same
    variables (``HTTPS_PROXY``, ``NO_PROXY``, ...), unless the configuration names one;
    netrc never applied (every call carries its own credentials).
    """
    if not configuration.proxy:
        from aiohttp.helpers import get_env_proxy_for_url
        from yarl import URL

        try:
            proxy, auth = get_env_proxy_for_url(URL(str(configuration.host)))
        except LookupError:
            proxy = None
        if proxy is not None:
            if auth is not None:  # aiohttp took the credentials out of the variable
                proxy = proxy.with_user(auth.login).with_password(auth.password)
            configuration.proxy = str(proxy)
    api = ApiClient(configuration)
    api.rest_client.pool_manager._trust_env = False  # the session has no public setter
    return api


@dataclass(frozen=True)
class Resource:
    """An API resource: ``group`` is ``""`` for the core group."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name)}"
        if sub:
            base += f"/{sub}"
        return base


class R:
    """The resources FluxUp talks to."""

    PVC = Resource("", "v1", "persistentvolumeclaims")
    PV = Resource("", "v1", "persistentvolumes", namespaced=False)
    POD = Resource("", "v1", "pods")
    SECRET = Resource("", "v1", "secrets")
    CONFIGMAP = Resource("", "v1", "configmaps")
    EVENT = Resource("", "v1", "events")
    NAMESPACE = Resource("", "v1", "namespaces", namespaced=False)
    DEPLOYMENT = Resource("apps", "v1", "deployments")
    STATEFULSET = Resource("apps", "v1", "statefulsets")
    STORAGECLASS = Resource("storage.k8s.io", "v1", "storageclasses", namespaced=False)
    SNAPSHOT = Resource("snapshot.storage.k8s.io", "v1", "volumesnapshots")
    SNAPSHOTCLASS = Resource(
        "snapshot.storage.k8s.io", "v1", "volumesnapshotclasses", namespaced=False
    )
    HELMRELEASE = Resource("helm.toolkit.fluxcd.io", "v2", "helmreleases")
    OCIREPOSITORY = Resource("source.toolkit.fluxcd.io", "v1", "ocirepositories")
    HELMREPOSITORY = Resource("source.toolkit.fluxcd.io", "v1", "helmrepositories")
    GITREPOSITORY = Resource("source.toolkit.fluxcd.io", "v1", "gitrepositories")
    KUSTOMIZATION = Resource("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
    MANAGEDAPP = Resource("fluxup.dev", "v1alpha1", "managedapps")
    UPGRADEREQUEST = Resource("fluxup.dev", "v1alpha1", "upgraderequests")
    ROLLBACKREQUEST = Resource("fluxup.dev", "v1alpha1", "rollbackrequests")
    TOKENREVIEW = Resource("authentication.k8s.io", "v1", "tokenreviews", namespaced=False)
    SELFSUBJECTREVIEW = Resource(
        "authentication.k8s.io", "v1", "selfsubjectreviews", namespaced=False
    )
    SUBJECTACCESSREVIEW = Resource(
        "authorization.k8s.io", "v1", "subjectaccessreviews", namespaced=False
    )


class Kube(Protocol):
    """What the reconcilers need from Kubernetes (tests may substitute it)."""

    async def get(self, res: Resource, namespace: str | None, name: str) -> Obj: ...
    async def find(self, res: Resource, namespace: str | None, name: str) -> Obj | None: ...
    async def list(
        self, res: Resource, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Obj]: ...
    async def create(self, res: Resource, namespace: str | None, body: Obj) -> Obj: ...
    async def merge_patch(
        self, res: Resource, namespace: str | None, name: str, patch: Obj, sub: str = ""
    ) -> Obj: ...
    async def apply(
        self, res: Resource, namespace: str | None, body: Obj, manager: str, sub: str = ""
    ) -> Obj: ...
    async def delete(self, res: Resource, namespace: str | None, name: str) -> None: ...
    async def served_kinds(self, api_version: str) -> frozenset[str] | None: ...


_API_VERSION = re.compile(r"^(?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?$")


def discovery_path(api_version: str) -> str | None:
    """The discovery URL path of ``api_version`` (``/api/v1``, ``/apis/<group>/<version>``);
    ``None`` when it is not a well-formed apiVersion (never a path to anything else)."""
    if not _API_VERSION.match(api_version):
        return None
    return f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"


def served_kinds_of(discovery: Obj) -> frozenset[str]:
    """The kinds an APIResourceList serves (subresources such as ``pods/log`` left out)."""
    return frozenset(
        str(r["kind"]) for r in discovery.get("resources") or []
        if isinstance(r, dict) and r.get("kind") and "/" not in str(r.get("name", ""))
    )


def _translate(exc: ApiException, what: str) -> KubeError:
    status = exc.status or 0
    reason = ""
    try:
        import json

        reason = json.loads(exc.body or "{}").get("message", "") if exc.body else ""
    except ValueError:
        reason = str(exc.reason or "")
    message = f"{what}: {reason or exc.reason} (HTTP {status})"
    if status == 404:
        return KubeNotFound(message)
    if status == 409:
        return KubeConflict(message)
    if status in (401, 403):
        return KubeForbidden(message)
    return KubeError(message)


class KubeApi:
    """:class:`Kube` over a ``kubernetes_asyncio`` :class:`ApiClient`."""

    def __init__(
        self, api: ApiClient, manager: str = "fluxup-operator", timeout: float = 30.0
    ) -> None:
        self._api = api
        self._manager = manager
        self._timeout = timeout  # per request: a stuck connection never stalls a reconcile

    async def _call(
        self,
        method: str,
        path: str,
        what: str,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            result = await self._api.call_api(
                path,
                method,
                query_params=query or [],
                header_params=headers,
                body=body,
                response_types_map={200: "object", 201: "object", 202: "object"},
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            raise _translate(exc, what) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # timeouts, resets, refused connections: retried like any other API error
            raise KubeError(
                f"{what}: the API server could not be reached ({type(exc).__name__})"
            ) from None
        return result if isinstance(result, dict) else {}

    async def get(self, res: Resource, namespace: str | None, name: str) -> Obj:
        return await self._call("GET", res.path(namespace, name), f"get {res.plural} {name}")

    async def find(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        try:
            return await self.get(res, namespace, name)
        except KubeNotFound:
            return None

    async def list(
        self, res: Resource, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Obj]:
        query = []
        if labels:
            query.append(("labelSelector", ",".join(f"{k}={v}" for k, v in labels.items())))
        out = await self._call("GET", res.path(namespace), f"list {res.plural}", query=query)
        items: list[Obj] = out.get("items", [])
        return items

    async def create(self, res: Resource, namespace: str | None, body: Obj) -> Obj:
        name = body.get("metadata", {}).get("name") or body.get("metadata", {}).get("generateName")
        return await self._call(
            "POST",
            res.path(namespace),
            f"create {res.plural} {name}",
            body,
            query=[("fieldManager", self._manager)],
        )

    async def merge_patch(
        self, res: Resource, namespace: str | None, name: str, patch: Obj, sub: str = ""
    ) -> Obj:
        return await self._call(
            "PATCH",
            res.path(namespace, name, sub),
            f"patch {res.plural} {name}",
            patch,
            query=[("fieldManager", self._manager)],
            content_type="application/merge-patch+json",
        )

    async def apply(
        self, res: Resource, namespace: str | None, body: Obj, manager: str, sub: str = ""
    ) -> Obj:
        name = body["metadata"]["name"]
        body = {"apiVersion": res.api_version, **body}
        return await self._call(
            "PATCH",
            res.path(namespace, name, sub),
            f"apply {res.plural} {name}",
            body,
            query=[("fieldManager", manager), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    async def delete(self, res: Resource, namespace: str | None, name: str) -> None:
        try:
            await self._call("DELETE", res.path(namespace, name), f"delete {res.plural} {name}")
        except KubeNotFound:
            return

    async def served_kinds(self, api_version: str) -> frozenset[str] | None:
        """The kinds the cluster serves under ``api_version``; ``None`` when it serves no
        such group/version (or the text is no apiVersion)."""
        path = discovery_path(api_version)
        if path is None:
            return None
        try:
            return served_kinds_of(await self._call("GET", path, f"discover {api_version}"))
        except KubeNotFound:
            return None
