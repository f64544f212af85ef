"""Redis stream operations of recovery: reclaim stale in-flight entries, list and requeue dead letters."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from notify.errors import BadRequestError
from notify.inbox.streams import ALL_STREAMS, FIELD, GROUP, RawEntry, Stream

ERRORS_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """Entries this consumer now owns again, with how many times each was delivered before."""

    entries: list[tuple[RawEntry, int]]
    vanished: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry of a dead-letter stream."""

    stream: str
    dead_id: str
    entry_id: str
    reason: str
    payload: bytes


def errors_key(stream: Stream) -> str:
    """Name the hash that keeps the last save error of each in-flight entry of a lane."""
    return f"inbox-errors:{stream.notification_type}:{stream.lane}"


async def reclaim(redis: Redis, stream: Stream, consumer: str, min_idle_ms: int, count: int) -> Reclaimed:
    """Claim up to `count` entries pending longer than `min_idle_ms`, for any consumer; return them.

    XPENDING (with IDLE) comes first because it tells how often each entry was delivered before this claim;
    XCLAIM with the same idle bound then skips any entry another worker claimed in between.
    """
    pending = await redis.xpending_range(stream.inbox, GROUP, min="-", max="+", count=count, idle=min_idle_ms)
    if not pending:
        return Reclaimed([], 0)
    delivered = {item["message_id"]: int(item["times_delivered"]) for item in pending}
    claimed = await redis.xclaim(stream.inbox, GROUP, consumer, min_idle_ms, list(delivered))
    entries: list[tuple[RawEntry, int]] = [
        ((entry_id, fields), delivered.get(entry_id, 1)) for entry_id, fields in claimed if entry_id is not None
    ]
    # Redis 6 answers an entry deleted while pending as (nil, nil) and keeps it pending: acknowledge it, but only
    # once XRANGE confirms it is gone (an entry skipped because another worker claimed it must stay pending).
    returned = {entry_id for (entry_id, _), _ in entries}
    vanished = [entry_id for entry_id in delivered if entry_id not in returned]
    gone = [entry_id for entry_id in vanished if not await redis.xrange(stream.inbox, entry_id, entry_id)]
    if gone:
        await redis.xack(stream.inbox, GROUP, *gone)
    return Reclaimed(entries, len(gone))


async def record_errors(redis: Redis, stream: Stream, entry_ids: list[bytes], error: str) -> None:
    """Remember why a save of these entries failed, for the dead-letter reason should they never be saved."""
    if not entry_ids:
        return
    key = errors_key(stream)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(key, mapping=dict.fromkeys(entry_ids, error[:500]))
        pipe.expire(key, ERRORS_TTL_S)
        await pipe.execute()


async def last_errors(redis: Redis, stream: Stream, entry_ids: list[bytes]) -> list[str | None]:
    """Return the last recorded save error of each entry (None where none was recorded)."""
    if not entry_ids:
        return []
    # redis-py types sync and async clients as one, hence the casts.
    values = await cast("Awaitable[list[Any]]", redis.hmget(errors_key(stream), entry_ids))
    return [value.decode() if isinstance(value, bytes) else None for value in values]


async def forget_errors(redis: Redis, stream: Stream, entry_ids: list[bytes]) -> None:
    """Drop the recorded errors of entries that were saved or buried."""
    if entry_ids:
        await cast("Awaitable[int]", redis.hdel(errors_key(stream), *[entry_id.decode() for entry_id in entry_ids]))


def _stream_for(name: str) -> Stream:
    for stream in ALL_STREAMS:
        if name in (stream.dead, stream.inbox):
            return stream
    raise BadRequestError(f"unknown stream {name!r}; expected one of {', '.join(s.dead for s in ALL_STREAMS)}")


def dead_streams(name: str | None) -> list[Stream]:
    """Return the lanes whose dead letters `name` selects (`dead:email:normal`, or None for all)."""
    return list(ALL_STREAMS) if name is None else [_stream_for(name)]


async def list_dead(redis: Redis, stream: Stream, limit: int, until: bytes | str = "+") -> list[DeadLetter]:
    """Return up to `limit` dead letters of one lane (up to stream id `until`), oldest first."""
    rows = await redis.xrange(stream.dead, max=until, count=limit)
    return [
        DeadLetter(
            stream=stream.dead,
            dead_id=dead_id.decode(),
            entry_id=fields.get(b"entry_id", b"").decode(),
            reason=fields.get(b"reason", b"").decode(errors="replace"),
            payload=fields.get(FIELD, b""),
        )
        for dead_id, fields in rows
    ]


async def requeue_dead(redis: Redis, stream: Stream, letters: list[DeadLetter]) -> None:
    """Add the dead letters' payloads back to the lane's inbox and delete them from the dead stream, atomically."""
    if not letters:
        return
    async with redis.pipeline(transaction=True) as pipe:
        for letter in letters:
            pipe.xadd(stream.inbox, {FIELD: letter.payload})
        pipe.xdel(stream.dead, *[letter.dead_id for letter in letters])
        await pipe.execute()
