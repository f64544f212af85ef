"""What `notify status` shows: each lane's backlog in Redis and the last hour's notifications by status."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify import metrics
from notify.db import create_engine, create_sessionmaker
from notify.inbox.streams import ALL_STREAMS, GROUP
from notify.ops import repository
from notify.redis import create_redis
from notify.settings import Settings

WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class LaneStats:
    """One lane's state in Redis."""

    stream: str
    depth: int
    in_flight: int
    dead: int
    oldest_pending_age_s: float | None
    oldest_entry_age_s: float | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one `notify status` screen shows."""

    taken_at: datetime
    lanes: list[LaneStats]
    counts: list[tuple[str, str, int]]


def _age_s(entry_id: bytes | str | None, now_ms: float) -> float | None:
    """Return the age of a stream entry from the milliseconds in its id."""
    if not entry_id:
        return None
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return max(now_ms - int(raw.split("-", 1)[0]), 0) / 1000


async def lane_stats(redis: Redis) -> list[LaneStats]:
    """Read every lane's depth, in-flight count, dead letters and oldest ages in one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for stream in ALL_STREAMS:
            pipe.xlen(stream.inbox)
            pipe.xpending(stream.inbox, GROUP)
            pipe.xlen(stream.dead)
            pipe.xrange(stream.inbox, "-", "+", count=1)
        # A lane whose group does not exist yet (no API or worker has started) answers NOGROUP to XPENDING.
        results = await pipe.execute(raise_on_error=False)
    now_ms = time.time() * 1000
    stats = []
    for index, stream in enumerate(ALL_STREAMS):
        depth, pending, dead, first = results[index * 4 : index * 4 + 4]
        if isinstance(pending, ResponseError):
            pending = {}
        stats.append(
            LaneStats(
                stream=stream.inbox,
                depth=int(depth),
                in_flight=int(pending.get("pending", 0)),
                dead=int(dead),
                oldest_pending_age_s=_age_s(pending.get("min"), now_ms),
                oldest_entry_age_s=_age_s(first[0][0] if first else None, now_ms),
            )
        )
    return stats


async def refresh_gauges(redis: Redis) -> None:
    """Set the lane gauges of `/metrics` from Redis."""
    for lane in await lane_stats(redis):
        _, notification_type, lane_name = lane.stream.split(":")
        metrics.INBOX_DEPTH.labels(notification_type, lane_name).set(lane.depth)
        metrics.IN_FLIGHT.labels(notification_type, lane_name).set(lane.in_flight)
        metrics.DEAD_LETTERS.labels(notification_type, lane_name).set(lane.dead)


async def snapshot(redis: Redis, sessionmaker: async_sessionmaker[AsyncSession]) -> Snapshot:
    """Take one snapshot of the lanes and of the last hour's statuses."""
    now = datetime.now(UTC)
    lanes = await lane_stats(redis)
    async with sessionmaker() as session:
        counts = await repository.counts_by_status(session, now - WINDOW)
    return Snapshot(taken_at=now, lanes=lanes, counts=counts)


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


def render(snap: Snapshot) -> Group:
    """Render a snapshot as two rich tables."""
    lanes = Table(title=f"Lanes at {snap.taken_at:%H:%M:%S} UTC")
    for column in ("lane", "inbox depth", "in flight", "dead letters", "oldest pending", "oldest entry"):
        lanes.add_column(column, justify="left" if column == "lane" else "right")
    for lane in snap.lanes:
        lanes.add_row(
            Text(lane.stream),  # plain Text: rich would turn ":email:" in "inbox:email:normal" into an emoji
            str(lane.depth),
            str(lane.in_flight),
            f"[red]{lane.dead}[/red]" if lane.dead else "0",
            _age(lane.oldest_pending_age_s),
            _age(lane.oldest_entry_age_s),
        )
    statuses = Table(title="Notifications created in the last hour")
    statuses.add_column("type")
    statuses.add_column("status")
    statuses.add_column("count", justify="right")
    for notification_type, status, count in snap.counts:
        statuses.add_row(Text(notification_type), Text(status), str(count))
    if not snap.counts:
        statuses.add_row("-", "-", "0")
    return Group(lanes, statuses)


async def _watch(settings: Settings, console: Console, *, watch: bool, interval_s: float) -> None:
    engine = create_engine(settings.db, application_name="notify.status")
    redis = create_redis(settings.redis, client_name="notify.status")
    try:
        sessionmaker = create_sessionmaker(engine)
        if not watch:
            console.print(render(await snapshot(redis, sessionmaker)))
            return
        with Live(render(await snapshot(redis, sessionmaker)), console=console, auto_refresh=False) as live:
            while True:
                await asyncio.sleep(interval_s)
                live.update(render(await snapshot(redis, sessionmaker)), refresh=True)
    finally:
        await redis.aclose()
        await engine.dispose()


def run(settings: Settings, console: Console, *, watch: bool = False, interval_s: float = 2.0) -> None:
    """Print the status once, or refresh it every `interval_s` until interrupted (`watch`)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_watch(settings, console, watch=watch, interval_s=interval_s))
