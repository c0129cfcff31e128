"""Serve an aiohttp application on 127.0.0.1 for a test (a real HTTP server, any port)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web


@contextlib.asynccontextmanager
async def serve_locally(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` until the block ends; yields its base URL ``http://127.0.0.1:<port>``."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
