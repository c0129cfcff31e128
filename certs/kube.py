"""kubernetes_asyncio implementations of :mod:`certs.ensure`'s protocols.

:class:`KubeSecretStore` reads/creates/replaces one ``kubernetes.io/tls`` Secret with
optimistic concurrency; :class:`KubeWebhookConfigurations` sets ``clientConfig.caBundle``
on every webhook of the Mutating and/or Validating configuration of a given name.
Library exceptions become :class:`fluxup.errors.CertificateError` with the call and the
API's reason — never a response body, which for Secrets could echo data.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from certs.ensure import StoreConflict, StoredSecret
from fluxup.errors import CertificateError

__all__ = ["KubeSecretStore", "KubeWebhookConfigurations"]

_LABELS = {"app.kubernetes.io/name": "fluxup", "app.kubernetes.io/component": "webhook"}


def _failure(call: str, exc: ApiException) -> CertificateError:
    hint = " (check the RBAC of the ServiceAccount running this)" if exc.status == 403 else ""
    return CertificateError(f"{call} failed: HTTP {exc.status} {exc.reason}{hint}")


class KubeSecretStore:
    """The Secret ``namespace/name`` holding the webhook's certificates."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self._core = client.CoreV1Api(api)
        self.namespace, self.name = namespace, name
        self.description = f"Secret {namespace}/{name}"
        self._type = "kubernetes.io/tls"

    def _body(self, data: Mapping[str, str], resource_version: str | None) -> client.V1Secret:
        metadata = client.V1ObjectMeta(
            name=self.name,
            namespace=self.namespace,
            labels=dict(_LABELS),
            resource_version=resource_version,
        )
        return client.V1Secret(
            api_version="v1", kind="Secret", metadata=metadata, type=self._type, data=dict(data)
        )

    async def read(self) -> StoredSecret | None:
        try:
            secret = await self._core.read_namespaced_secret(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _failure(f"reading {self.description}", exc) from None
        self._type = secret.type or self._type
        return StoredSecret(dict(secret.data or {}), secret.metadata.resource_version)

    async def create(self, data: Mapping[str, str]) -> None:
        try:
            await self._core.create_namespaced_secret(self.namespace, self._body(data, None))
        except ApiException as exc:
            if exc.status == 409:
                raise StoreConflict(f"{self.description} already exists") from None
            raise _failure(f"creating {self.description}", exc) from None

    async def replace(self, data: Mapping[str, str], resource_version: str) -> None:
        try:
            await self._core.replace_namespaced_secret(
                self.name, self.namespace, self._body(data, resource_version)
            )
        except ApiException as exc:
            if exc.status == 409:
                raise StoreConflict(f"{self.description} changed since it was read") from None
            raise _failure(f"replacing {self.description}", exc) from None


class KubeWebhookConfigurations:
    """Mutating/ValidatingWebhookConfigurations, addressed by name."""

    def __init__(self, api: client.ApiClient, attempts: int = 5) -> None:
        self._api = client.AdmissionregistrationV1Api(api)
        self._attempts = attempts

    async def _inject_one(self, kind: str, name: str, encoded: str) -> bool | None:
        read = getattr(self._api, f"read_{kind}_webhook_configuration")
        replace = getattr(self._api, f"replace_{kind}_webhook_configuration")
        for _ in range(self._attempts):
            try:
                config = await read(name)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise _failure(f"reading {kind} webhook configuration {name}", exc) from None
            stale = [w for w in config.webhooks or [] if w.client_config.ca_bundle != encoded]
            if not stale:
                return False
            for webhook in stale:
                webhook.client_config.ca_bundle = encoded
            try:
                await replace(name, config)
            except ApiException as exc:
                if exc.status == 409:
                    continue
                raise _failure(f"updating {kind} webhook configuration {name}", exc) from None
            return True
        raise CertificateError(
            f"{kind} webhook configuration {name} kept changing while injecting its caBundle"
        )

    async def inject(self, name: str, ca_bundle: bytes) -> bool:
        encoded = base64.b64encode(ca_bundle).decode()
        results = [await self._inject_one(kind, name, encoded)
                   for kind in ("mutating", "validating")]
        if all(r is None for r in results):
            raise CertificateError(
                f"no Mutating- or ValidatingWebhookConfiguration named {name}; apply "
                "manifests/webhook first, or pass the right --webhook-config"
            )
        return any(results)
