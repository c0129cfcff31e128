"""The per-identity inbox cache: fresh entries are reused, old ones and errors are not,
one load serves concurrent misses, a user's entries can be dropped, size is bounded."""

from __future__ import annotations

import asyncio

import pytest

from fluxup.errors import KubeForbidden
from fluxup.ui.listcache import ListCache, identity_key


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Loader:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        await asyncio.sleep(0)
        return self.calls


async def test_entries_live_ttl_seconds() -> None:
    clock, load = Clock(), Loader()
    cache: ListCache[int] = ListCache(5, clock=clock)
    key = identity_key("alice", ("b", "a"), None)
    assert await cache.get(key, load) == 1
    clock.now += 4.9
    assert await cache.get(key, load) == 1
    clock.now += 0.1  # 5 s after the load started
    assert await cache.get(key, load) == 2
    assert load.calls == 2


async def test_age_counts_from_the_answer() -> None:
    """A list slower than ttl (a loaded apiserver) is still reused afterwards."""
    clock = Clock()
    cache: ListCache[int] = ListCache(5, clock=clock)
    calls = 0

    async def slow() -> int:
        nonlocal calls
        calls += 1
        clock.now += 7
        return calls

    assert await cache.get("k", slow) == 1
    clock.now += 4.9
    assert await cache.get("k", slow) == 1
    clock.now += 0.1
    assert await cache.get("k", slow) == 2


async def test_keys_are_the_whole_identity() -> None:
    assert identity_key("alice", ("b", "a"), None) == identity_key("alice", ["a", "b"], None)
    different = {identity_key("alice", ("a",), None), identity_key("alice", ("a", "b"), None),
                 identity_key("bob", ("a",), None), identity_key("alice", ("a",), "ns")}
    assert len(different) == 4
    cache: ListCache[int] = ListCache(5, clock=Clock())
    load = Loader()
    for key in different:
        await cache.get(key, load)
    assert load.calls == 4


async def test_errors_are_not_cached() -> None:
    cache: ListCache[int] = ListCache(5, clock=Clock())
    calls = 0

    async def refused() -> int:
        nonlocal calls
        calls += 1
        raise KubeForbidden("list managedapps: forbidden (HTTP 403)")

    for _ in range(2):
        with pytest.raises(KubeForbidden):
            await cache.get("k", refused)
    assert calls == 2
    assert len(cache) == 0


async def test_concurrent_misses_share_one_load() -> None:
    cache: ListCache[int] = ListCache(5, clock=Clock())
    load = Loader()
    results = await asyncio.gather(*(cache.get("k", load) for _ in range(5)))
    assert results == [1] * 5
    assert load.calls == 1


async def test_forget_drops_every_entry_of_one_user() -> None:
    cache: ListCache[int] = ListCache(5, clock=Clock())
    load = Loader()
    for key in (identity_key("alice", (), None), identity_key("alice", ("g",), "ns"),
                identity_key("bob", (), None)):
        await cache.get(key, load)
    cache.forget("alice")
    assert len(cache) == 1
    await cache.get(identity_key("bob", (), None), load)
    assert load.calls == 3  # bob's entry stayed


async def test_least_recently_used_leave_first_and_zero_ttl_disables() -> None:
    cache: ListCache[int] = ListCache(5, max_entries=2, clock=Clock())
    load = Loader()
    await cache.get("a", load)
    await cache.get("b", load)
    await cache.get("a", load)  # a is now the most recent
    await cache.get("c", load)  # b leaves
    assert len(cache) == 2
    await cache.get("a", load)
    assert load.calls == 3
    await cache.get("b", load)
    assert load.calls == 4
    off: ListCache[int] = ListCache(0)
    assert not off.enabled
    await off.get("a", load)
    await off.get("a", load)
    assert load.calls == 6
    assert len(off) == 0
