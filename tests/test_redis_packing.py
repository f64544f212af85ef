"""Commands packed by hiredis go out byte for byte as redis-py packs them, and work against a real Redis."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import DataError

from notify.redis import Commands, create_redis, hiredis_packing
from notify.settings import RedisSettings
from tests.servers import Servers

COMMANDS: list[tuple[Any, ...]] = [
    ("XADD", "inbox:email:normal", "MAXLEN", "~", 100_000, "*", "e", b'{"id": "x"}' * 40),
    ("EVALSHA", "a" * 40, 2, "rate:key", "daily:key", 1.5, 10, -3, 2**70, "member"),
    ("SET", "ünïcödé ✉", "välue", "EX", 30),
    ("ZADD", "scores", 1e20, "a", 0.1, "b"),
    ("SET", "empty", ""),
    ("SET", "view", memoryview(b"ab")),
    ("CLIENT SETNAME", "notify.test"),  # a command name with a space: redis-py splits it
    (b"CONFIG GET", b"maxmemory"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: str(command[0]))
def test_hiredis_packs_the_bytes_redis_py_packs(command: tuple[Any, ...]) -> None:
    packing = hiredis_packing(Connection)()
    assert b"".join(packing.pack_command(*command)) == b"".join(Connection().pack_command(*command))


def test_values_redis_py_refuses_are_refused_the_same_way() -> None:
    packing = hiredis_packing(Connection)()
    refused: tuple[Any, ...] = (True, None, bytearray(b"x"))
    for value in refused:
        with pytest.raises(DataError, match="Invalid input"):
            packing.pack_command("SET", "k", value)


def test_the_packing_class_keeps_the_transport_of_the_url() -> None:
    tcp = create_redis(RedisSettings(url="redis://127.0.0.1:6390/0"), client_name="t")
    unix = create_redis(RedisSettings(url="unix:///tmp/notify-test.sock?db=0"), client_name="t")
    assert issubclass(tcp.connection_pool.connection_class, Connection)
    assert issubclass(unix.connection_pool.connection_class, UnixDomainSocketConnection)
    assert tcp.connection_pool.connection_class.__name__ == "HiredisConnection"
    assert hiredis_packing(hiredis_packing(Connection)) is hiredis_packing(Connection)


async def test_commands_round_trip_through_the_real_redis(servers: Servers, clean: None) -> None:
    client = create_redis(RedisSettings(url=servers.redis_url), client_name="notify.packing-test")
    try:
        await client.set("ünïcödé ✉", "välue", ex=30)
        assert await client.get("ünïcödé ✉") == "välue".encode()
        entry = await client.xadd("packing:stream", {"e": b"\x00\xff" * 300})
        [(entry_id, fields)] = await client.xrange("packing:stream")
        assert (entry_id, fields) == (entry, {b"e": b"\x00\xff" * 300})
        commands: Commands = client
        script = await commands.execute_command("EVAL", "return {ARGV[1], ARGV[2]}", 0, 1.5, 2**70)
        assert script == [b"1.5", b"1180591620717411303424"]
        assert await client.client_getname() == "notify.packing-test"
        async with client.pipeline(transaction=True) as pipe:
            pipe.incr("packing:n")
            pipe.incr("packing:n")
            replies = await pipe.execute()
        assert replies == [1, 2]
    finally:
        await client.aclose()
