"""A lean HTTP/1.1 client for the provider calls of the send path: kept-alive connections, httptools parsing.

The lean senders POST one small signed request and read one small answer, thousands of times a second.
aiohttp's general client (cookie jar, redirects, tracing hooks, multidict headers, payload writers, a
task per request) spent about a third of a worker's CPU doing that (BENCHMARKS.md); this client keeps only
what the exchange needs: a pool of kept-alive connections per origin, the request written in one call,
and the answer parsed by httptools (llhttp, as uvicorn uses it), with the connect and read timeouts of
the aiohttp session it replaces. Anything it cannot carry (a proxy) still goes through aiohttp.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

MAX_BODY_BYTES = 1 << 20  # provider answers are a few hundred bytes; anything bigger is not one
_UNSAFE = re.compile(r"[\r\n\0]")


class HttpError(OSError):
    """The exchange failed below HTTP: refused, reset, closed early, unparseable or too big an answer."""


class ServerDisconnectedError(HttpError):
    """The server closed the connection before its answer was complete."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a URL's requests go: scheme, host and port, and the request target (path and query)."""

    scheme: str
    host: str
    port: int
    target: str

    @classmethod
    def from_url(cls, url: str) -> Origin:
        """Split an absolute http(s) URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an absolute http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.scheme, parts.hostname, port, target)


class Headers(dict[str, str]):
    """Answer headers by lower-case name; `get` takes any case, as aiohttp's do."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """Return the header's value, whatever the case of `name`."""
        return super().get(name.lower(), default)


@dataclass(frozen=True, slots=True)
class Response:
    """One complete answer."""

    status: int
    headers: Headers
    body: bytes


class _Connection(asyncio.Protocol):
    """One kept-alive connection: write a request, resolve a future with the parsed answer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._headers = Headers()
        self._body: list[bytes] = []
        self._size = 0
        self._until_eof = False  # an answer framed by neither Content-Length nor chunks ends when the server closes
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # nothing was asked: the connection is out of step
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"unreadable answer: {exc}"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._until_eof and exc is None and self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(Response(self._parser.get_status_code(), self._headers, b"".join(self._body)))
            return
        self._fail(ServerDisconnectedError(f"connection closed before the answer was complete: {exc or 'EOF'}"))

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._until_eof = "content-length" not in self._headers and "transfer-encoding" not in self._headers

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY_BYTES:
            self._fail(HttpError(f"answer body over {MAX_BODY_BYTES} bytes"))
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        self.reusable = self._parser.should_keep_alive()
        waiter.set_result(Response(self._parser.get_status_code(), self._headers, b"".join(self._body)))

    # -- used by the client
    async def exchange(self, request: bytes, timeout_s: float) -> Response:
        """Write `request` and wait for the whole answer; raise TimeoutError if it is not complete in `timeout_s`.

        The deadline is one timer on the loop, cancelled when the answer is in: `asyncio.timeout` would also
        cancel and un-cancel the calling task, which costs more than the rest of the exchange's bookkeeping.
        """
        assert self._transport is not None
        if self.closed:
            raise ServerDisconnectedError("connection closed before the request was written")
        self._headers = Headers()
        self._body = []
        self._size = 0
        self._until_eof = False
        self.reusable = False
        waiter: asyncio.Future[Response] = self._loop.create_future()
        self._waiter = waiter
        self._transport.write(request)
        timer = self._loop.call_later(timeout_s, self._time_out, waiter, timeout_s)
        try:
            return await waiter
        finally:
            timer.cancel()

    def close(self) -> None:
        """Close the connection (it is never reused after this)."""
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _time_out(self, waiter: asyncio.Future[Response], timeout_s: float) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError(f"no complete answer in {timeout_s:g} s"))
        self.close()  # a late answer must never be read as the next request's

    def _fail(self, exc: HttpError) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()


class Http11Client:
    """POSTs over a pool of kept-alive HTTP/1.1 connections (TLS for https), at most `limit` at once."""

    def __init__(
        self,
        *,
        limit: int,
        keepalive_timeout_s: float,
        connect_timeout_s: float,
        read_timeout_s: float,
        ssl_context: ssl.SSLContext,
    ) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._keepalive_timeout_s = keepalive_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._ssl = ssl_context
        self._idle: dict[Origin, deque[_Connection]] = {}
        self.opened = 0  # connections opened so far: what keep-alive saves shows here

    async def post(self, origin: Origin, headers: dict[str, str], body: bytes) -> Response:
        """POST `body` with `headers` (Host among them) to `origin`; raise HttpError or TimeoutError on failure."""
        request = _request(origin, headers, body)
        async with self._slots:
            connection = self._take_idle(origin) or await self._connect(origin)
            try:
                response = await connection.exchange(request, self._read_timeout_s)
            except BaseException:
                connection.close()  # a late answer must never be read as the next request's
                raise
            if connection.reusable and not connection.closed:
                connection.idle_since = time.monotonic()
                self._idle.setdefault(origin, deque()).append(connection)
            else:
                connection.close()
            return response

    async def close(self) -> None:
        """Close every idle connection."""
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _take_idle(self, origin: Origin) -> _Connection | None:
        connections = self._idle.get(origin)
        oldest = time.monotonic() - self._keepalive_timeout_s
        while connections:
            connection = connections.pop()  # the most recently used: the least likely to have been closed
            if not connection.closed and connection.idle_since >= oldest:
                return connection
            connection.close()
        return None

    async def _connect(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = origin.scheme == "https"
        async with asyncio.timeout(self._connect_timeout_s):
            _, connection = await loop.create_connection(
                lambda: _Connection(loop),
                origin.host,
                origin.port,
                ssl=self._ssl if tls else None,
                server_hostname=origin.host if tls else None,
            )
        self.opened += 1
        return connection


def _request(origin: Origin, headers: dict[str, str], body: bytes) -> bytes:
    """Serialise the request head and body; refuse header text that could split the request."""
    lines = [f"POST {origin.target} HTTP/1.1"]
    for name, value in headers.items():
        if _UNSAFE.search(name) or _UNSAFE.search(value):
            raise ValueError(f"header {name!r} holds a line break or NUL")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    return "\r\n".join(lines).encode("latin-1") + body
