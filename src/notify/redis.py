"""Redis client factory."""

from __future__ import annotations

from redis.asyncio import Redis

from notify.settings import RedisSettings


def create_redis(settings: RedisSettings, client_name: str) -> Redis:
    """Create the process's Redis client with an explicit pool size and timeouts."""
    client: Redis = Redis.from_url(
        settings.url,
        max_connections=settings.max_connections,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.socket_timeout_s,
        health_check_interval=30,
        client_name=client_name,
    )
    return client
