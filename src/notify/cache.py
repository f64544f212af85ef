"""In-process caches for the hot path, invalidated across processes through Redis pub/sub (DESIGN §2.1)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from notify.db import after_commit

INVALIDATION_CHANNEL = "notify:cache:invalidate"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

log = structlog.get_logger(__name__)


class TtlCache(Generic[K, V]):
    """A dict whose entries expire after `ttl_s` seconds, loaded once however many requests miss at the same time."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._data: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[V | None]] = {}
        self._generation = 0  # moves on every invalidation: a load that began before one never fills the cache

    def get(self, key: K) -> V | None:
        """Return the live value for `key`, or None."""
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            self._data.pop(key, None)
            return None
        return value

    def set(self, key: K, value: V) -> None:
        """Store `value` until the TTL runs out."""
        if len(self._data) >= self._max_entries:
            self._data.clear()
        self._data[key] = (time.monotonic() + self._ttl_s, value)

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """Return the live value for `key`, or load it (None: nothing to cache).

        When an entry expires under load, dozens of requests miss it in the same moment; they all wait for one
        load instead of each querying the database (a pile-up that showed as the API's p99 every TTL). A TTL of
        zero or less turns caching off: every call loads.
        """
        if self._ttl_s <= 0:
            return await load()
        value = self.get(key)
        if value is not None:
            return value
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(self._load(key, load, self._generation))
        return await asyncio.shield(pending)

    async def _load(self, key: K, load: Callable[[], Awaitable[V | None]], generation: int) -> V | None:
        try:
            value = await load()
        finally:
            if generation == self._generation:
                self._loading.pop(key, None)
        if value is not None and generation == self._generation:
            self.set(key, value)
        return value

    def discard(self, predicate: Callable[[K], bool]) -> None:
        """Drop every entry whose key matches `predicate` (loads in progress finish but are not kept)."""
        self._generation += 1
        for key in [key for key in self._data if predicate(key)]:
            self._data.pop(key, None)
        for key in [key for key in self._loading if predicate(key)]:
            self._loading.pop(key, None)

    def clear(self) -> None:
        """Drop everything (loads in progress finish but are not kept)."""
        self._generation += 1
        self._data.clear()
        self._loading.clear()


async def publish_invalidation(redis: Redis, service_id: uuid.UUID) -> None:
    """Tell every process to forget what it cached about a service (keys, templates, limits)."""
    await redis.publish(INVALIDATION_CHANNEL, str(service_id))


def invalidate_after_commit(session: AsyncSession, redis: Redis | None, service_id: uuid.UUID) -> None:
    """Publish the invalidation once the change is committed, so no process can reload the old data after it."""
    if redis is not None:
        after_commit(session, lambda: publish_invalidation(redis, service_id))


async def listen_for_invalidations(
    redis: Redis, on_invalidate: Callable[[uuid.UUID | None], None], stop: asyncio.Event
) -> None:
    """Call `on_invalidate(service_id)` for every invalidation message until `stop` is set; reconnect on errors.

    After each (re)subscription `on_invalidate(None)` clears everything, since messages published while the
    connection was down are lost. Stopping is by event, not cancellation: a cancel landing inside the client's
    read timeout can surface as a TimeoutError and be taken for a connection problem.
    """
    while not stop.is_set():
        try:
            async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(INVALIDATION_CHANNEL)
                on_invalidate(None)
                while not stop.is_set():
                    # A bounded wait keeps an idle subscription below the client's socket timeout.
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                    if message is not None:
                        _dispatch(message.get("data"), on_invalidate)
        except Exception as exc:
            if stop.is_set():
                return
            log.warning("notify.cache.listener_error", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


def _dispatch(data: object, on_invalidate: Callable[[uuid.UUID | None], None]) -> None:
    if isinstance(data, bytes | str):
        try:
            on_invalidate(uuid.UUID(data.decode() if isinstance(data, bytes) else data))
        except ValueError:
            log.warning("notify.cache.bad_invalidation")
