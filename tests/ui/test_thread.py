"""The UI's own thread and loop (fluxup.ui.thread): it serves while the caller's loop is
busy, reports a failed start to the caller, and cleans up when left."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import urllib.request
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from fluxup.sandbox.processes import free_port
from fluxup.ui.thread import LoopThread


@contextlib.asynccontextmanager
async def _server(port: int, seen: dict[str, object]) -> AsyncIterator[None]:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=threading.current_thread().name)

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    seen["loop"] = asyncio.get_running_loop()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield
    finally:
        await runner.cleanup()
        seen["cleaned"] = True


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        return str(resp.read().decode())


async def test_it_answers_while_the_callers_loop_is_blocked() -> None:
    port, seen = free_port(), {}
    async with LoopThread("ui-test", lambda: _server(port, seen)):
        assert seen["loop"] is not asyncio.get_running_loop()
        answers: list[str] = []
        client = threading.Thread(target=lambda: answers.append(_get(port)))
        client.start()
        # the caller's loop does nothing else meanwhile, as under a resync of every app
        time.sleep(0.5)  # noqa: ASYNC251
        client.join(timeout=5)
        assert answers == ["ui-test"]
    assert seen["cleaned"] is True
    with pytest.raises(OSError, match="refused"):
        _get(port)


async def test_a_failed_start_is_raised_to_the_caller() -> None:
    taken = free_port()
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", taken)
    try:
        with pytest.raises(OSError, match="address already in use"):
            async with LoopThread("ui-test", lambda: _server(taken, {})):
                pytest.fail("entered although the port is taken")
    finally:
        blocker.close()
        await blocker.wait_closed()


async def test_an_error_inside_the_context_is_the_callers_too() -> None:
    @contextlib.asynccontextmanager
    async def refuses() -> AsyncIterator[None]:
        raise ValueError("FLUXUP_UI_HOST 0.0.0.0 is not loopback")
        yield  # pragma: no cover

    with pytest.raises(ValueError, match="not loopback"):
        async with LoopThread("ui-test", refuses):
            pass
