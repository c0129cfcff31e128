"""Where line 2 of the gate learns which ManagedApp protects a Helm release.

The release-record review (:mod:`webhook.reviews.release_record`) is pure; it needs the
line-2 views of the ManagedApps whose recorded release is the record's. This module
reads them: one label-selected list of ManagedApps (``fluxup.dev/release-key``, a hash
of the release's storage namespace and name) as the webhook's own ServiceAccount, which
may only get/list ManagedApps. Line 2 runs once per Helm install/upgrade/rollback, never
on Line 1's hot path, so a live read (no cache that could be stale) is affordable.
A failed read raises :class:`GateStateUnavailable`; the review then denies (fail closed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from fluxup.api import annotations as ann
from fluxup.api.constants import GROUP, MANAGED_APP, VERSION
from fluxup.logic.release_record import ReleaseGate, parse_release_gate

__all__ = ["GateStateUnavailable", "KubeReleaseGates", "ReleaseGates", "open_release_gates"]


class GateStateUnavailable(RuntimeError):
    """The ManagedApps could not be read; the message says why (no credentials in it)."""


class ReleaseGates(Protocol):
    """The line-2 views of the ManagedApps recorded for one release key."""

    async def gates_for(self, release_key: str) -> list[ReleaseGate]: ...


class KubeReleaseGates:
    """:class:`ReleaseGates` from the Kubernetes API (kubernetes_asyncio)."""

    def __init__(self, api: Any, timeout: float = 3.0) -> None:
        from kubernetes_asyncio import client

        self._custom = client.CustomObjectsApi(api)
        self._timeout = timeout

    async def gates_for(self, release_key: str) -> list[ReleaseGate]:
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            listed = await asyncio.wait_for(
                self._custom.list_cluster_custom_object(
                    GROUP, VERSION, MANAGED_APP.plural,
                    label_selector=f"{ann.RELEASE_KEY_LABEL}={release_key}",
                ),
                self._timeout,
            )
        except ApiException as exc:
            raise GateStateUnavailable(
                f"listing ManagedApps failed: {exc.status} {exc.reason}"
            ) from None
        except (TimeoutError, OSError) as exc:
            raise GateStateUnavailable(f"listing ManagedApps failed: {type(exc).__name__}") \
                from None
        gates = [parse_release_gate(item) for item in listed.get("items", [])]
        return [g for g in gates if g is not None]


@contextlib.asynccontextmanager
async def open_release_gates(kubeconfig: Path | None) -> AsyncIterator[ReleaseGates | None]:
    """A :class:`KubeReleaseGates` from ``kubeconfig`` or the in-cluster ServiceAccount;
    ``None`` when neither is available (line 2 then denies managed records)."""
    from kubernetes_asyncio import client, config

    api: Any
    if kubeconfig is not None:
        api = await config.new_client_from_config(config_file=str(kubeconfig))
    else:
        configuration = client.Configuration()
        try:
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except config.ConfigException:
            yield None
            return
        api = client.ApiClient(configuration)
    try:
        yield KubeReleaseGates(api)
    finally:
        await api.close()
