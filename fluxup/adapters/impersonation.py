"""Kubernetes calls made *as another user*: the web UI's reads and writes.

The UI never acts with the operator's own rights on a person's behalf. Each request is
sent with ``Impersonate-User`` and one ``Impersonate-Group`` header per group, so the
apiserver authorizes it against that person's RBAC (and records them in its audit log).
The operator's ServiceAccount only needs the ``impersonate`` verb on users and groups.

``kubernetes_asyncio`` folds request headers into a dict, which cannot carry a header
twice, so this adapter speaks HTTP itself with httpx, reusing the operator's client
configuration (server, CA, client certificate, bearer token with its refresh hook).
It implements the :class:`~fluxup.adapters.kube.Kube` protocol and translates HTTP
errors into :mod:`fluxup.errors` like :class:`~fluxup.adapters.kube.KubeApi` does; no
message contains a request body.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from fluxup.adapters.kube import Obj, Resource, discovery_path, served_kinds_of
from fluxup.errors import KubeConflict, KubeError, KubeForbidden, KubeNotFound

__all__ = ["Impersonator", "UserKube", "build_impersonation_headers"]


def build_impersonation_headers(user: str, groups: Sequence[str]) -> list[tuple[str, str]]:
    """The headers that make the apiserver treat a request as ``user`` in ``groups``."""
    if not user:
        raise ValueError("impersonation needs a user name")
    headers = [("Impersonate-User", user)]
    headers += [("Impersonate-Group", group) for group in groups if group]
    return headers


def _error(response: httpx.Response, what: str) -> KubeError:
    try:
        reason = str(response.json().get("message", ""))
    except ValueError:
        reason = response.reason_phrase
    message = f"{what}: {reason or response.reason_phrase} (HTTP {response.status_code})"
    if response.status_code == 404:
        return KubeNotFound(message)
    if response.status_code == 409:
        return KubeConflict(message)
    if response.status_code in (401, 403):
        return KubeForbidden(message)
    return KubeError(message)


class Impersonator:
    """Holds one HTTP connection pool to the apiserver; hands out per-user clients.

    ``configuration`` is a ``kubernetes_asyncio.client.Configuration`` (typed ``Any``: the
    library ships no type information); its ``auth_settings()`` refreshes in-cluster
    tokens, so a rotated ServiceAccount token is picked up.
    """

    def __init__(self, configuration: Any, manager: str = "fluxup-ui",
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._conf = configuration
        self._manager = manager
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
        # ``transport``: tests pass an ``httpx.MockTransport`` to see every request made
        self._http = httpx.AsyncClient(base_url=str(configuration.host).rstrip("/"),
                                       verify=context, timeout=30.0, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    def as_user(self, user: str, groups: Sequence[str]) -> UserKube:
        """A :class:`~fluxup.adapters.kube.Kube` whose every call is made as ``user``."""
        return UserKube(self, build_impersonation_headers(user, groups))

    async def request(self, method: str, path: str, what: str, identity: list[tuple[str, str]],
                      *, body: Any = None, params: list[tuple[str, str]] | None = None,
                      content_type: str = "application/json") -> Obj:
        headers = httpx.Headers([("Accept", "application/json"),
                                 ("Content-Type", content_type), *identity])
        auth = await self._conf.auth_settings()
        bearer = auth.get("BearerToken")
        if bearer:
            headers["Authorization"] = bearer["value"]
        try:
            response = await self._http.request(method, path, headers=headers, json=body,
                                                params=tuple(params or ()))
        except httpx.HTTPError as exc:
            raise KubeError(f"{what}: apiserver unreachable ({type(exc).__name__})") from None
        if response.status_code >= 400:
            raise _error(response, what)
        data = response.json() if response.content else {}
        return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class UserKube:
    """The :class:`~fluxup.adapters.kube.Kube` protocol, every call as one person."""

    impersonator: Impersonator
    identity: list[tuple[str, str]]

    @property
    def manager(self) -> str:
        return self.impersonator._manager

    async def get(self, res: Resource, namespace: str | None, name: str) -> Obj:
        return await self.impersonator.request("GET", res.path(namespace, name),
                                               f"get {res.plural} {name}", self.identity)

    async def find(self, res: Resource, namespace: str | None, name: str) -> Obj | None:
        try:
            return await self.get(res, namespace, name)
        except KubeNotFound:
            return None

    async def list(self, res: Resource, namespace: str | None = None,
                   labels: Mapping[str, str] | None = None) -> list[Obj]:
        """Served from the apiserver's watch cache (``resourceVersion=0``): what a person
        sees may be milliseconds behind, never unauthorized (RBAC is checked as for any
        read). A consistent list waits until that cache has caught up with etcd, which on a
        busy cluster (an operator writing statuses) costs tens of milliseconds per list.
        Gets stay consistent, and every write is the apiserver's to check."""
        params = [("resourceVersion", "0")]
        if labels:
            params.append(("labelSelector", ",".join(f"{k}={v}" for k, v in labels.items())))
        out = await self.impersonator.request("GET", res.path(namespace), f"list {res.plural}",
                                              self.identity, params=params)
        items: list[Obj] = out.get("items", [])
        return items

    async def create(self, res: Resource, namespace: str | None, body: Obj) -> Obj:
        meta = body.get("metadata", {})
        name = meta.get("name") or meta.get("generateName")
        return await self.impersonator.request(
            "POST", res.path(namespace), f"create {res.plural} {name}", self.identity,
            body=body, params=[("fieldManager", self.manager)])

    async def merge_patch(self, res: Resource, namespace: str | None, name: str, patch: Obj,
                          sub: str = "") -> Obj:
        return await self.impersonator.request(
            "PATCH", res.path(namespace, name, sub), f"patch {res.plural} {name}",
            self.identity, body=patch, params=[("fieldManager", self.manager)],
            content_type="application/merge-patch+json")

    async def apply(self, res: Resource, namespace: str | None, body: Obj, manager: str,
                    sub: str = "") -> Obj:
        name = body["metadata"]["name"]
        return await self.impersonator.request(
            "PATCH", res.path(namespace, name, sub), f"apply {res.plural} {name}",
            self.identity, body={"apiVersion": res.api_version, **body},
            params=[("fieldManager", manager), ("force", "true")],
            content_type="application/apply-patch+yaml")

    async def delete(self, res: Resource, namespace: str | None, name: str) -> None:
        await self.impersonator.request("DELETE", res.path(namespace, name),
                                        f"delete {res.plural} {name}", self.identity)

    async def served_kinds(self, api_version: str) -> frozenset[str] | None:
        path = discovery_path(api_version)
        if path is None:
            return None
        try:
            found = await self.impersonator.request("GET", path, f"discover {api_version}",
                                                    self.identity)
        except KubeNotFound:
            return None
        return served_kinds_of(found)

    async def can(self, verb: str, res: Resource, namespace: str | None) -> bool:
        """Whether this user may ``verb`` the resource (a SelfSubjectAccessReview)."""
        review = {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {
                "group": res.group, "resource": res.plural, "verb": verb,
                **({"namespace": namespace} if namespace else {})}},
        }
        out = await self.impersonator.request(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            f"review {verb} {res.plural}", self.identity, body=review)
        return bool(out.get("status", {}).get("allowed"))
