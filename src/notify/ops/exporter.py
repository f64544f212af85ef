"""The worker's own `/metrics` HTTP server (the API serves `/metrics` through its router)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from aiohttp import web
from redis.asyncio import Redis

from notify import metrics
from notify.ops import status

log = structlog.get_logger(__name__)


async def scrape(redis: Redis) -> bytes:
    """Refresh the lane gauges from Redis (a scrape still answers if it is down) and render the metrics."""
    try:
        await status.refresh_gauges(redis)
    except Exception as exc:
        log.warning("notify.metrics.refresh_failed", error=type(exc).__name__)
    return metrics.render()


@asynccontextmanager
async def serve(host: str, port: int, redis: Redis) -> AsyncIterator[None]:
    """Serve `GET /metrics` on `host:port` while the context is open."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=await scrape(redis), headers={"Content-Type": metrics.CONTENT_TYPE})

    application = web.Application()
    application.router.add_get("/metrics", handle)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("notify.metrics.serving", host=host, port=port)
        yield
    finally:
        await runner.cleanup()
