"""arq cron jobs reading the inbox streams: one per notification type and lane (`beat-inbox-*`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from notify.context import from_ctx
from notify.inbox import service
from notify.inbox.streams import ALL_STREAMS, Stream

BeatJob = Callable[[dict[str, Any]], Awaitable[int]]


def make_beat(stream: Stream) -> BeatJob:
    """Build the cron job for one lane; it reads for most of one beat interval."""

    async def beat_inbox(ctx: dict[str, Any]) -> int:
        app = from_ctx(ctx)
        return await service.beat(app, stream, app.settings.worker.beat_interval_s * 0.9)

    beat_inbox.__qualname__ = beat_inbox.__name__ = f"beat_inbox_{stream.notification_type}_{stream.lane}"
    return beat_inbox


BEATS: tuple[BeatJob, ...] = tuple(make_beat(stream) for stream in ALL_STREAMS)
