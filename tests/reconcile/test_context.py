"""Per-object locks serialize an event and a timer, and are dropped once nobody uses them."""

from __future__ import annotations

import asyncio
import gc

from tests.reconcile.world import World


async def test_locks_serialize_and_do_not_accumulate() -> None:
    ctx = World().ctx
    order: list[str] = []

    async def work(name: str) -> None:
        async with ctx.lock("managedapp/apps/web"):
            order.append(f"{name}-in")
            await asyncio.sleep(0)
            order.append(f"{name}-out")

    await asyncio.gather(work("event"), work("timer"))
    assert order == ["event-in", "event-out", "timer-in", "timer-out"]
    for i in range(100):
        async with ctx.lock(f"managedapp/apps/app-{i}"):
            pass
    gc.collect()
    assert len(ctx.locks) == 0
