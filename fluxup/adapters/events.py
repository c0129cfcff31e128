"""Record Kubernetes Events about FluxUp's objects (and the Flux objects it acts on).

Reconcilers call :meth:`EventRecorder.record` on transitions and recoveries only, never
on every pass. Messages are user-facing text and never contain secrets.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from fluxup.adapters.kube import Kube, R
from fluxup.errors import KubeError

__all__ = ["EventRecorder"]

log = logging.getLogger(__name__)


class EventRecorder:
    """Creates ``v1`` Events with ``source.component = fluxup``."""

    def __init__(self, kube: Kube, component: str = "fluxup") -> None:
        self._kube = kube
        self._component = component

    async def record(
        self, obj: Mapping[str, Any], reason: str, message: str, warning: bool = False
    ) -> None:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta.get('name')}.{secrets.token_hex(8)}",
                         "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                "name": meta.get("name"), "namespace": namespace, "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": self._component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self._kube.create(R.EVENT, namespace, body)
        except KubeError as exc:  # an event is never worth failing a reconcile for
            log.warning("could not record event %s on %s: %s", reason, meta.get("name"), exc)
