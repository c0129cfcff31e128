"""A short-lived, per-person cache of what the inbox lists (``/``, ``/api/apps``,
``/api/inbox``).

Why: the inbox reads every ManagedApp, UpgradeRequest and RollbackRequest as the
logged-in user (impersonated lists). With a thousand apps that is megabytes of JSON per
page view; paging through the inbox, or a browser and a script polling the API, would
repeat it every time. Used by :mod:`fluxup.ui.routes_pages` and
:mod:`fluxup.ui.routes_api`; filled through :func:`fluxup.ui.service.load_inbox`.

What keeps it safe:

* An entry is keyed by the **exact identity the apiserver saw** (user name and every
  group) plus the namespace asked for; it holds only what the apiserver answered that
  identity. Nobody is ever answered from another identity's entry.
* Entries live ``ttl`` seconds from the apiserver's answer (``FLUXUP_UI_LIST_CACHE_SECONDS``,
  default 5; 0 turns the cache off), so an RBAC change is seen within that time plus the
  time one list takes, and a refusal (403) is never cached: the next request asks the
  apiserver again.
* A person's own write through the UI drops their entries (the ``forget_after_writes``
  middleware of :mod:`fluxup.ui.app`), so the page they return to shows what they did.
* At most ``max_entries`` identities are kept (least recently used leave first), which
  bounds memory.

Concurrent misses for one key share a single load. No Kubernetes calls of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ListCache", "identity_key"]

V = TypeVar("V")


def identity_key(user: str, groups: tuple[str, ...] | list[str], *rest: Hashable) -> Hashable:
    """The key of one identity's view: user, every group (order-free), then ``rest``."""
    return (user, tuple(sorted(groups)), *rest)


class ListCache(Generic[V]):
    """``get(key, load)``: the value loaded for ``key`` less than ``ttl`` seconds ago, or
    a fresh ``load()`` (errors are passed on, never stored)."""

    def __init__(self, ttl: float, max_entries: int = 64,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._locks: dict[Hashable, asyncio.Lock] = {}

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def _fresh(self, key: Hashable) -> tuple[float, V] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() - entry[0] >= self._ttl:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        if not self.enabled:
            return await load()
        entry = self._fresh(key)
        if entry is not None:
            return entry[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                entry = self._fresh(key)  # another request may have loaded it meanwhile
                if entry is not None:
                    return entry[1]
                fresh = await load()
                # age counts from the answer (as HTTP caches do): a list that took longer
                # than ttl under load would otherwise be stale on arrival, and every next
                # request would list again
                self._entries[key] = (self._clock(), fresh)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
                return fresh
        finally:
            if not lock.locked():
                self._locks.pop(key, None)

    def forget(self, user: str) -> None:
        """Drop every entry of ``user`` (any groups, any namespace)."""
        for key in [k for k in self._entries if isinstance(k, tuple) and k and k[0] == user]:
            del self._entries[key]
