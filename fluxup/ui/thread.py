"""Run the web UI on a thread and event loop of its own, inside the operator's process.

Why: the reconcilers and the UI used to share one event loop. While the reconcilers are
busy (a start-up over a thousand apps, a wave of events) that loop's ready queue is long,
and each of a page's awaits waited behind it. On a thread of its own the UI has its own
loop, queue and Kubernetes client; the two share only the interpreter (the GIL switches
between busy threads every few ms), so a page waits for at most a few switches, not for a
thousand reconciler callbacks.

:class:`LoopThread` is an async context manager for the operator: entering it starts the
thread and returns once ``enter()`` (an async context manager, built and entered on the
new loop) has been entered, re-raising its error if it failed (a port in use, a refused
bind address); leaving it ends that context on its loop and joins the thread. Used by
:mod:`fluxup.operator`. No Kubernetes calls of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from types import TracebackType

__all__ = ["LoopThread"]

log = logging.getLogger(__name__)


class LoopThread:
    """``enter()``'s context, entered and left on a new thread's own event loop."""

    def __init__(self, name: str,
                 enter: Callable[[], contextlib.AbstractAsyncContextManager[object]]) -> None:
        self._name = name
        self._enter = enter
        self._entered: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to the caller, or logged
            if not self._entered.done():
                self._entered.set_exception(exc)
            else:
                log.exception("%s stopped with an error", self._name)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self._enter():
            self._entered.set_result(None)
            await self._stop.wait()

    async def __aenter__(self) -> LoopThread:
        self._thread.start()
        await asyncio.wrap_future(self._entered)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
                self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join)
