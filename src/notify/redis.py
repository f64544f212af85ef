"""Redis client factory, and the batcher that sends concurrent requests' commands as one write on one connection."""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT

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
    pool = client.connection_pool
    pool.connection_class = hiredis_packing(pool.connection_class)  # before the pool opens its first connection
    return client


class _HiredisPacking(AbstractConnection):
    """Packs each command with hiredis (C) instead of redis-py's Python packer: the same bytes, ~6 times cheaper.

    redis-py 5's asyncio connections pack in Python (about 4 µs per command here, against 0.7 µs for
    `hiredis.pack_command`), which every API request pays for its limits script (and for its XADD, when that is a
    command of its own). Anything hiredis does not pack — a command name holding a space (`CLIENT SETNAME`), a
    value type it refuses — goes to redis-py's packer.
    """

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        first = args[0]
        if not (isinstance(first, str) and " " in first) and not (isinstance(first, bytes) and b" " in first):
            try:
                return [hiredis.pack_command(args)]  # type: ignore[arg-type]
            except TypeError:
                pass
        return super().pack_command(*args)


_HIREDIS_CLASSES: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def hiredis_packing(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """Return `connection_class` (TCP, TLS or Unix socket) with hiredis packing its commands."""
    if issubclass(connection_class, _HiredisPacking):
        return connection_class
    packing = _HIREDIS_CLASSES.get(connection_class)
    if packing is None:
        packing = type(f"Hiredis{connection_class.__name__}", (_HiredisPacking, connection_class), {})
        _HIREDIS_CLASSES[connection_class] = packing
    return packing


class Commands(Protocol):
    """What the hot path needs from Redis: one raw command at a time (`Redis` and `CommandBatcher` both are)."""

    async def execute_command(self, *args: EncodableT, **options: Any) -> Any:
        """Run one command and return its parsed reply."""


class CommandBatcher:
    """Send the commands that concurrent requests issue during one event-loop turn as one write, on one connection.

    redis-py spends far more CPU per command (pool checkout, health check, a task for each timed write, a timed
    read per reply) than Redis spends executing it. The batcher keeps one connection of its own, which redis-py
    opens and authenticates (`Connection.connect`: TLS, AUTH, SELECT, CLIENT SETNAME), and then drives it lean:
    the commands of a loop turn are packed and written at once, and one reader task parses the replies with
    hiredis, as redis-py's own parser does, and hands them out in order. Batches are pipelined on the connection
    (a batch does not wait for the previous one's replies). Measured against the pipeline through the pool:
    about 40 % of the client CPU per command (BENCHMARKS.md, fifth session).

    Each caller gets its own reply, after redis-py's response callback for that command, or its own error
    (`WRONGTYPE`, `NOSCRIPT` as `NoScriptError`…, as redis-py's parser maps them). A lost connection fails every
    command waiting on it with `ConnectionError`; no reply for `socket_timeout` seconds while commands wait fails
    them with `TimeoutError` and drops the connection. Either way the next batch opens a new connection. Commands
    run in the order they were issued, without MULTI: each is atomic on its own. Blocking commands (BLPOP,
    XREAD BLOCK…) and pub/sub do not belong here: they would hold up every command behind them.
    """

    def __init__(self, redis: Redis) -> None:
        self.batches = 0
        self.commands = 0
        self.connects = 0
        pool = redis.connection_pool
        self._new_connection = functools.partial(pool.connection_class, **pool.connection_kwargs)
        self._packer = self._new_connection()  # never connected: packs commands as the pool's connections would
        self._timeout: float | None = pool.connection_kwargs.get("socket_timeout")
        self._callbacks: dict[str | bytes, Callable[..., Any]] = dict(redis.response_callbacks)
        self._pending: list[_Command] = []
        self._link: _Link | None = None
        self._backlog: list[_Command] = []
        self._connecting: asyncio.Task[None] | None = None
        self._closed = False

    async def execute_command(self, *args: EncodableT, **options: Any) -> Any:
        """Queue one command for the next batch and return its reply (options are not supported)."""
        if options:
            raise TypeError(f"CommandBatcher takes no command options, got {sorted(options)}")
        if self._closed:
            raise RedisConnectionError("the command batcher is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)  # after every callback already ready in this turn has queued its command
        name = args[0]
        callback = self._callbacks.get(name.upper()) if isinstance(name, str | bytes) else None
        self._pending.append(_Command(self._packer.pack_command(*args), callback, future))
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self.batches += 1
        self.commands += len(batch)
        link = self._link
        if link is not None and link.failure is None and not self._backlog:
            link.send(batch)
            return
        self._backlog += batch
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        """Open a connection for the backlog (the commands queued while there was none) and send it."""
        try:
            if self._link is not None:
                await self._link.close()
                self._link = None
            connection = self._new_connection()
            try:
                await connection.connect()  # type: ignore[no-untyped-call]
            except BaseException as exc:  # every command queued until now fails with it, as each would have alone
                await connection.disconnect(nowait=True)
                backlog, self._backlog = self._backlog, []
                _fail(backlog, exc)
                if not isinstance(exc, Exception):
                    raise
                return
            self.connects += 1
            self._link = _Link(connection, self._timeout)
            backlog, self._backlog = self._backlog, []
            self._link.send(backlog)
        finally:
            self._connecting = None

    async def __aenter__(self) -> CommandBatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Wait for the commands in flight (their callers are waiting for them too), then close the connection."""
        self._closed = True
        if self._pending:
            self._flush()
        if self._connecting is not None:
            await asyncio.gather(self._connecting, return_exceptions=True)
        if self._link is not None:
            await self._link.drain()
            await self._link.close()
            self._link = None


class _Command(NamedTuple):
    packed: list[bytes]
    callback: Callable[..., Any] | None
    future: asyncio.Future[Any]


def _fail(commands: Iterable[_Command], exc: BaseException) -> None:
    for command in commands:
        if not command.future.done():
            command.future.set_exception(exc)


class _Link:
    """One open connection of the batcher: writes batches, reads and hands out replies in order, watches time."""

    def __init__(self, connection: AbstractConnection, timeout: float | None) -> None:
        self.connection = connection
        self.failure: BaseException | None = None
        self._timeout = timeout
        self._writer = connection._writer  # redis-py opened it; the batcher drives it lean
        self._waiting: deque[_Command] = deque()
        self._reader = hiredis.Reader(
            protocolError=InvalidResponse,
            replyError=BaseParser.parse_error,
            notEnoughData=_NOT_ENOUGH_DATA,
            **_decoding(connection),
        )
        self._loop = asyncio.get_running_loop()
        self._progress = self._loop.time()
        self._watchdog: asyncio.TimerHandle | None = None
        self._drained: asyncio.Future[None] | None = None
        self._task = self._loop.create_task(self._read())

    def send(self, batch: Sequence[_Command]) -> None:
        """Write a batch; its replies come back in order after every batch already sent."""
        assert self._writer is not None
        if not self._waiting:
            self._progress = self._loop.time()
        self._waiting.extend(batch)
        self._writer.writelines([chunk for command in batch for chunk in command.packed])
        if self._timeout and self._watchdog is None:
            self._watchdog = self._loop.call_at(self._progress + self._timeout, self._check_progress)

    async def _read(self) -> None:
        reader = self.connection._reader
        assert reader is not None
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    raise RedisConnectionError("Connection closed by server.")
                self._progress = self._loop.time()
                self._reader.feed(data)
                while (reply := self._reader.gets()) is not _NOT_ENOUGH_DATA:
                    command = self._waiting.popleft()
                    if command.future.done():  # the caller was cancelled; the command ran all the same
                        continue
                    if isinstance(reply, Exception):
                        command.future.set_exception(reply)
                    elif command.callback is not None:
                        try:
                            command.future.set_result(command.callback(reply))
                        except Exception as exc:  # the caller's error, as redis-py would raise it
                            command.future.set_exception(exc)
                    else:
                        command.future.set_result(reply)
                if not self._waiting and self._drained is not None and not self._drained.done():
                    self._drained.set_result(None)
        except asyncio.CancelledError:
            self._break(RedisConnectionError("the command batcher closed its connection"))
            raise
        except OSError as exc:
            self._break(RedisConnectionError(f"Error while reading from Redis: {exc}"))
        except Exception as exc:  # every waiting caller gets it; the next batch reconnects
            self._break(exc)

    def _check_progress(self) -> None:
        self._watchdog = None
        if not self._waiting or self.failure is not None:
            return
        assert self._timeout is not None
        due = self._progress + self._timeout
        if self._loop.time() >= due:
            self._break(RedisTimeoutError(f"no reply from Redis in {self._timeout:g} s"))
            self._task.cancel()
        else:
            self._watchdog = self._loop.call_at(due, self._check_progress)

    def _break(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        waiting, self._waiting = self._waiting, deque()
        _fail(waiting, self.failure)
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if self._writer is not None:
            self._writer.close()

    async def drain(self) -> None:
        """Wait until every command sent has its reply (or the connection failed)."""
        if self._waiting and self.failure is None:
            self._drained = self._loop.create_future()
            await self._drained

    async def close(self) -> None:
        """Close the connection; commands still waiting fail with `ConnectionError`."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._break(RedisConnectionError("the command batcher closed its connection"))
        await self.connection.disconnect(nowait=True)


_NOT_ENOUGH_DATA = object()


def _decoding(connection: AbstractConnection) -> dict[str, str]:
    """The hiredis reader's decoding arguments, as redis-py's parser sets them for this connection."""
    encoder = connection.encoder
    if encoder.decode_responses:
        return {"encoding": encoder.encoding, "errors": encoder.encoding_errors}
    return {"errors": encoder.encoding_errors}
