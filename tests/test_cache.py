"""The hot path's in-process cache: one load for many simultaneous misses, and invalidation wins over a slow load."""

from __future__ import annotations

import asyncio

import pytest

from notify.cache import TtlCache


async def test_simultaneous_misses_share_one_load() -> None:
    cache: TtlCache[str, str] = TtlCache(ttl_s=30)
    loads = 0
    release = asyncio.Event()

    async def load() -> str:
        nonlocal loads
        loads += 1
        await release.wait()
        return "service"

    waiting = [asyncio.ensure_future(cache.get_or_load("key", load)) for _ in range(30)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == ["service"] * 30
    assert loads == 1
    assert await cache.get_or_load("key", load) == "service"
    assert loads == 1, "the loaded value is cached"


async def test_an_expired_entry_is_loaded_again() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl_s=0.01)
    values = iter([1, 2])

    async def load() -> int:
        return next(values)

    assert await cache.get_or_load("key", load) == 1
    await asyncio.sleep(0.02)
    assert await cache.get_or_load("key", load) == 2


async def test_a_load_that_began_before_an_invalidation_is_not_kept() -> None:
    cache: TtlCache[str, str] = TtlCache(ttl_s=30)
    release = asyncio.Event()
    values = iter(["before the change", "after the change"])

    async def load() -> str:
        value = next(values)  # what the database says when the load starts
        await release.wait()
        return value

    first = asyncio.ensure_future(cache.get_or_load("key", load))
    await asyncio.sleep(0)
    cache.discard(lambda key: key == "key")
    second = asyncio.ensure_future(cache.get_or_load("key", load))  # a new load, not the stale one
    await asyncio.sleep(0)
    release.set()
    assert await first == "before the change"
    assert await second == "after the change"
    assert cache.get("key") == "after the change"


async def test_nothing_is_cached_when_the_load_finds_nothing_or_fails() -> None:
    cache: TtlCache[str, str] = TtlCache(ttl_s=30)

    async def missing() -> str | None:
        return None

    async def failing() -> str:
        raise ConnectionError("database down")

    assert await cache.get_or_load("key", missing) is None
    with pytest.raises(ConnectionError):
        await cache.get_or_load("key", failing)
    assert cache.get("key") is None


async def test_a_ttl_of_zero_loads_every_time() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl_s=0)
    values = iter([1, 2])

    async def load() -> int:
        return next(values)

    assert [await cache.get_or_load("key", load), await cache.get_or_load("key", load)] == [1, 2]
