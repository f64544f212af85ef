"""The API's command batcher: one connection, one write per loop turn, each caller its own reply or error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from notify.embedded import free_port
from notify.redis import CommandBatcher, Commands, create_redis
from notify.settings import RedisSettings
from tests.servers import Servers


@pytest.fixture
async def batcher(redis: Redis, clean: None) -> AsyncIterator[CommandBatcher]:
    async with CommandBatcher(redis) as batcher:
        yield batcher


def _raw(redis: Redis) -> Commands:
    """redis-py's own `execute_command`, typed."""
    return redis


async def _batcher_client(redis: Redis, name: str) -> dict[str, str]:
    clients: list[dict[str, Any]] = await redis.client_list()
    [client] = [client for client in clients if client["name"] == name]
    return client


async def test_commands_issued_in_one_loop_turn_go_in_one_write(batcher: CommandBatcher) -> None:
    replies = await asyncio.gather(*(batcher.execute_command("INCR", "batched") for _ in range(50)))
    assert replies == list(range(1, 51)), "commands run in the order they were issued"
    assert (batcher.batches, batcher.commands) == (1, 50)
    assert await batcher.execute_command("GET", "batched") == b"50"
    assert (batcher.batches, batcher.connects) == (2, 1)


async def test_replies_are_what_redis_py_returns_for_the_same_commands(redis: Redis, clean: None) -> None:
    """The lean path against the general one: the same raw reply, then redis-py's response callback."""
    commands: list[tuple[Any, ...]] = [
        ("PING",),
        ("SET", "k", "v"),
        ("GET", "k"),
        ("GET", "missing"),
        ("HSET", "h", "a", "1", "b", "2"),
        ("HGETALL", "h"),
        ("EXISTS", "k", "missing"),
        ("ZADD", "z", 1.5, "m"),
        ("ZSCORE", "z", "m"),
        ("EXPIRE", "k", 60),
        ("EVAL", "return {1, 'two', {3}}", 0),
        ("XLEN", "nothing"),
        ("set", "lower", b"\x00\xffbytes"),
        ("get", "lower"),
    ]
    expected = []
    for command in commands:
        expected.append(await _raw(redis).execute_command(*command))
    await redis.flushdb()
    async with CommandBatcher(redis) as batcher:
        got = await asyncio.gather(*(batcher.execute_command(*command) for command in commands))
    assert got == expected
    assert got[:2] == [True, True], "redis-py's callbacks ran (PING, SET)"
    assert got[5] == {b"a": b"1", b"b": b"2"}
    assert got[8] == 1.5


async def test_decoded_replies_when_the_client_decodes(servers: Servers, clean: None) -> None:
    redis = Redis.from_url(servers.redis_url, decode_responses=True)
    try:
        async with CommandBatcher(redis) as batcher:
            assert await batcher.execute_command("SET", "k", "välue") is True
            assert await batcher.execute_command("GET", "k") == "välue"
    finally:
        await redis.aclose()


async def test_each_caller_gets_its_own_error(redis: Redis, batcher: CommandBatcher) -> None:
    await redis.set("text", "not a number")
    results = await asyncio.gather(
        batcher.execute_command("INCR", "counter"),
        batcher.execute_command("INCR", "text"),
        batcher.execute_command("EVALSHA", "0" * 40, 0),
        batcher.execute_command("XADD", "stream", "*", "f", b"v"),
        return_exceptions=True,
    )
    assert results[0] == 1
    assert type(results[1]) is ResponseError
    assert "not an integer" in str(results[1])
    assert isinstance(results[2], NoScriptError), "errors are mapped as redis-py's parser maps them"
    assert isinstance(results[3], bytes)
    assert batcher.batches == 1
    assert await redis.xlen("stream") == 1


async def test_the_connection_is_redis_pys_own_handshake(servers: Servers, redis: Redis, clean: None) -> None:
    """Database and client name from the URL and settings: redis-py opened the batcher's connection."""
    url = servers.redis_url.rsplit("/", 1)[0] + "/3"
    client = create_redis(RedisSettings(url=url), client_name="notify.batcher-test")
    try:
        async with CommandBatcher(client) as batcher:
            assert await batcher.execute_command("SET", "in-db-3", "1") is True
            assert (await _batcher_client(redis, "notify.batcher-test"))["db"] == "3"
            assert await client.exists("in-db-3") == 1
    finally:
        await client.flushdb()
        await client.aclose()


async def test_a_caller_cancelled_does_not_disturb_the_others(redis: Redis, batcher: CommandBatcher) -> None:
    first = asyncio.ensure_future(batcher.execute_command("INCR", "n"))
    second = asyncio.ensure_future(batcher.execute_command("INCR", "n"))
    third = asyncio.ensure_future(batcher.execute_command("INCR", "n"))
    await asyncio.sleep(0)
    second.cancel()
    assert await first == 1
    assert await third == 3, "the cancelled caller's command ran all the same, in its place"
    assert second.cancelled()
    assert await batcher.execute_command("INCR", "n") == 4


async def test_redis_down_fails_every_command_of_the_batch() -> None:
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        async with CommandBatcher(down) as batcher:
            results = await asyncio.gather(
                *(batcher.execute_command("INCR", "x") for _ in range(3)), return_exceptions=True
            )
    finally:
        await down.aclose()
    assert all(isinstance(result, RedisConnectionError) for result in results), results


async def test_a_killed_connection_fails_what_waits_on_it_and_the_next_batch_reconnects(
    servers: Servers, redis: Redis, clean: None
) -> None:
    client = create_redis(RedisSettings(url=servers.redis_url), client_name="notify.batcher-kill")
    try:
        async with CommandBatcher(client) as batcher:
            assert await batcher.execute_command("INCR", "n") == 1
            # Writes wait while Redis is paused; the connection is killed under the waiting INCR.
            await _raw(redis).execute_command("CLIENT", "PAUSE", 5000, "WRITE")
            try:
                waiting = asyncio.ensure_future(batcher.execute_command("INCR", "n"))
                await asyncio.sleep(0.1)
                assert not waiting.done()
                victim = await _batcher_client(redis, "notify.batcher-kill")
                await _raw(redis).execute_command("CLIENT", "KILL", "ID", victim["id"])
                with pytest.raises(RedisConnectionError):
                    await asyncio.wait_for(waiting, timeout=2)
            finally:
                await _raw(redis).execute_command("CLIENT", "UNPAUSE")
            assert await batcher.execute_command("INCR", "n") in (2, 3)
            assert batcher.connects == 2
    finally:
        await client.aclose()


async def test_no_reply_within_the_socket_timeout_fails_the_waiting_commands(
    servers: Servers, redis: Redis, clean: None
) -> None:
    client = create_redis(RedisSettings(url=servers.redis_url, socket_timeout_s=0.3), client_name="notify.slow")
    try:
        async with CommandBatcher(client) as batcher:
            assert await batcher.execute_command("INCR", "n") == 1
            await _raw(redis).execute_command("CLIENT", "PAUSE", 3000, "WRITE")
            try:
                started = asyncio.get_running_loop().time()
                results = await asyncio.gather(
                    batcher.execute_command("INCR", "n"), batcher.execute_command("INCR", "n"), return_exceptions=True
                )
                waited = asyncio.get_running_loop().time() - started
            finally:
                await _raw(redis).execute_command("CLIENT", "UNPAUSE")
            assert all(isinstance(result, RedisTimeoutError) for result in results), results
            assert 0.25 < waited < 2.0
            assert await batcher.execute_command("GET", "n") is not None, "the next command opened a new connection"
            assert batcher.connects == 2
    finally:
        await client.aclose()


async def test_close_waits_for_the_commands_in_flight(redis: Redis, clean: None) -> None:
    batcher = CommandBatcher(redis)
    calls = [asyncio.ensure_future(batcher.execute_command("INCR", "n")) for _ in range(20)]
    await asyncio.sleep(0)
    await batcher.aclose()
    assert sorted(call.result() for call in calls) == list(range(1, 21))
    with pytest.raises(RedisConnectionError, match="closed"):
        await batcher.execute_command("INCR", "n")


async def test_command_options_are_refused(batcher: CommandBatcher) -> None:
    with pytest.raises(TypeError, match="no command options"):
        await batcher.execute_command("GET", "x", keys=["x"])
