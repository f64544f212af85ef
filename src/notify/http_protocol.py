"""uvicorn's httptools protocol, with each response's head and body leaving in one write.

uvicorn writes the status line and headers when the app sends `http.response.start`, and the body when it sends
`http.response.body`: two `send()` calls, two TCP segments, and on the client's side often two wake-ups and two
reads for one small JSON answer. Here the connection's writes during one event-loop turn are joined and handed to
the socket once, at the end of that turn (`loop.call_soon`); a head and a body sent together, as every
Starlette `Response` does, become one segment. In `notify bench e2e` this took the CPU per notification of the
API, the workers (which read the fake AWS's answers) and the fake AWS down by about a tenth.

Nothing waits longer than the current loop turn, and nothing piles up: once a turn has written
`FLUSH_AT_BYTES`, it goes out at once, so a streamed response is still written, and paced by the transport's flow
control, chunk by chunk. Closing the connection writes what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# What uvicorn.run(http=...) takes to use this protocol (an import string also reaches its worker processes).
PROTOCOL = "notify.http_protocol:CoalescingHttpToolsProtocol"


def uvicorn_http(coalesce_writes: bool) -> str:
    """Return uvicorn's `http` option: this protocol, or plain httptools when coalescing is switched off."""
    return PROTOCOL if coalesce_writes else "httptools"


class CoalescingTransport:
    """A transport whose writes during one loop turn reach the socket as one write (everything else passes through)."""

    FLUSH_AT_BYTES = 64 * 1024

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._flush_scheduled = False

    def write(self, data: bytes) -> None:
        """Hold `data` until the end of this loop turn, or write at once what reaches `FLUSH_AT_BYTES`."""
        if not data:
            return
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes >= self.FLUSH_AT_BYTES:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    def flush(self) -> None:
        """Write everything held, as one write."""
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held = []
        self._held_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        """Write what is held, then close the connection."""
        self.flush()
        self._transport.close()

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Wrap the connection's transport before uvicorn sees it."""
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
