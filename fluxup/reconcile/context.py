"""What every reconciler is given: the Kubernetes client, Git access, settings, clock.

Built once by the operator entry point (:mod:`fluxup.operator`) and passed explicitly
(kopf ``memo``). Tests substitute the pieces they need through the same dataclass.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fluxup.adapters.events import EventRecorder
from fluxup.adapters.git.base import GitBackend
from fluxup.adapters.kube import Kube
from fluxup.adapters.metrics import OperatorMetrics
from fluxup.adapters.notify import Notifier
from fluxup.api.managedapp import GitSource
from fluxup.settings import Settings

__all__ = ["Context", "GitOpener", "utcnow"]

#: Opens the Git repository a ManagedApp lives in (credentials from Flux's Secret).
GitOpener = Callable[[GitSource, str], Awaitable[GitBackend]]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Context:
    kube: Kube
    settings: Settings
    open_git: GitOpener
    events: EventRecorder
    now: Callable[[], dt.datetime] = utcnow
    #: one lock per object while anyone uses it; a lock nobody holds or waits for is
    #: dropped (weak values), so the table never grows with deleted objects
    locks: weakref.WeakValueDictionary[str, asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary
    )
    #: the operator's metrics; None in tests that do not look at them
    metrics: OperatorMetrics | None = None
    #: delivers notices in the background; None when no channel is configured
    notifier: Notifier | None = None

    def lock(self, key: str) -> asyncio.Lock:
        """One lock per object, so a timer and an event never reconcile it at once."""
        lock = self.locks.get(key)
        if lock is None:
            lock = self.locks[key] = asyncio.Lock()
        return lock
