"""Redis stream names and operations for the inbox, its in-flight set and dead letters (DESIGN §5)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from notify import metrics
from notify.inbox.schemas import LANES, TYPES, InboxEntry, Lane, NotificationType
from notify.redis import Commands

log = structlog.get_logger(__name__)

GROUP = "savers"
FIELD = b"n"


@dataclass(frozen=True, slots=True)
class Stream:
    """One lane of one notification type."""

    notification_type: NotificationType
    lane: Lane

    @property
    def inbox(self) -> str:
        """The stream accepted notifications are added to."""
        return f"inbox:{self.notification_type}:{self.lane}"

    @property
    def dead(self) -> str:
        """The stream entries go to when they cannot be saved."""
        return f"dead:{self.notification_type}:{self.lane}"


ALL_STREAMS = tuple(Stream(notification_type, lane) for notification_type in TYPES for lane in LANES)

RawEntry = tuple[bytes, dict[bytes, bytes]]


def consumer_name() -> str:
    """Name this process within the consumer group."""
    return f"{socket.gethostname()}-{os.getpid()}"


async def ensure_groups(redis: Redis) -> None:
    """Create every inbox stream's consumer group, reading from the start so nothing added earlier is missed."""
    for stream in ALL_STREAMS:
        try:
            await redis.xgroup_create(stream.inbox, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def publish(redis: Commands, entry: InboxEntry) -> None:
    """XADD an accepted notification to its lane's inbox stream (`redis` may be the API's command batcher)."""
    await redis.execute_command("XADD", Stream(entry.notification_type, entry.lane).inbox, "*", FIELD, entry.to_bytes())
    count_accepted(entry)


def count_accepted(entry: InboxEntry) -> None:
    """Count a notification added to its inbox stream (by `publish`, or by the limits script)."""
    metrics.ACCEPTED.labels(entry.notification_type, entry.lane).inc()


async def read(redis: Redis, stream: Stream, consumer: str, count: int, block_ms: int | None) -> list[RawEntry]:
    """Read up to `count` new entries for this consumer; they stay pending (in flight) until acknowledged.

    When the stream or its group has gone (deleted by hand, or Redis came back without its data), the group is
    created again and the read retried: the worker heals instead of failing every beat until it restarts.
    """
    try:
        response = await redis.xreadgroup(GROUP, consumer, {stream.inbox: ">"}, count=count, block=block_ms)
    except ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        log.warning("notify.inbox.group_recreated", stream=stream.inbox)
        await ensure_groups(redis)
        response = await redis.xreadgroup(GROUP, consumer, {stream.inbox: ">"}, count=count, block=block_ms)
    if not response:
        return []
    entries: list[RawEntry] = response[0][1]
    return entries


async def acknowledge(redis: Redis, stream: Stream, entry_ids: list[bytes]) -> None:
    """Acknowledge and delete saved entries, in one round trip."""
    if not entry_ids:
        return
    async with redis.pipeline(transaction=False) as pipe:
        pipe.xack(stream.inbox, GROUP, *entry_ids)
        pipe.xdel(stream.inbox, *entry_ids)
        await pipe.execute()


async def bury(redis: Redis, stream: Stream, entries: list[tuple[bytes, bytes, str]]) -> None:
    """Move entries `(entry id, payload, reason)` to the dead-letter stream, then acknowledge them."""
    if not entries:
        return
    async with redis.pipeline(transaction=True) as pipe:
        for entry_id, payload, reason in entries:
            pipe.xadd(stream.dead, {b"entry_id": entry_id, FIELD: payload, b"reason": reason.encode()})
        ids = [entry_id for entry_id, _, _ in entries]
        pipe.xack(stream.inbox, GROUP, *ids)
        pipe.xdel(stream.inbox, *ids)
        await pipe.execute()
