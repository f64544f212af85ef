"""The API's command batcher: concurrent commands share one pipeline, each caller gets its own reply or error."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from notify.embedded import free_port
from notify.redis import CommandBatcher


async def test_commands_issued_in_one_loop_turn_go_in_one_pipeline(redis: Redis, clean: None) -> None:
    batcher = CommandBatcher(redis)
    replies = await asyncio.gather(*(batcher.execute_command("INCR", "batched") for _ in range(50)))
    assert replies == list(range(1, 51)), "commands run in the order they were issued"
    assert (batcher.batches, batcher.commands) == (1, 50)
    assert await batcher.execute_command("GET", "batched") == b"50"
    assert batcher.batches == 2


async def test_each_caller_gets_its_own_error(redis: Redis, clean: None) -> None:
    await redis.set("text", "not a number")
    batcher = CommandBatcher(redis)
    results = await asyncio.gather(
        batcher.execute_command("INCR", "counter"),
        batcher.execute_command("INCR", "text"),
        batcher.execute_command("XADD", "stream", "*", "f", b"v"),
        return_exceptions=True,
    )
    assert results[0] == 1
    assert isinstance(results[1], ResponseError)
    assert isinstance(results[2], bytes)
    assert batcher.batches == 1
    assert await redis.xlen("stream") == 1


async def test_a_connection_error_fails_every_command_of_the_batch() -> None:
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    batcher = CommandBatcher(down)
    try:
        results = await asyncio.gather(
            *(batcher.execute_command("INCR", "x") for _ in range(3)), return_exceptions=True
        )
    finally:
        await down.aclose()
    assert all(isinstance(result, RedisConnectionError) for result in results), results


async def test_command_options_are_refused(redis: Redis) -> None:
    with pytest.raises(TypeError, match="no command options"):
        await CommandBatcher(redis).execute_command("GET", "x", keys=["x"])
