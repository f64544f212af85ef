"""One write per response (notify.http_protocol): what is held, when it goes out, and HTTP through uvicorn with it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from notify.embedded import free_port
from notify.http_protocol import PROTOCOL, CoalescingTransport, uvicorn_http

CHUNK = b"x" * 50_000
CHUNKS = 40  # 2 MB streamed


class RecordingTransport(asyncio.Transport):
    """Keeps what reaches the socket, write by write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 1234)}.get(name, default)


async def test_writes_of_one_loop_turn_reach_the_socket_as_one_write_at_the_end_of_the_turn() -> None:
    socket = RecordingTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop())

    transport.write(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    transport.write(b"")
    assert socket.writes == []
    await asyncio.sleep(0)

    assert socket.writes == [b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert socket.writes[1:] == [b"next"]


async def test_a_large_write_goes_out_at_once_and_close_sends_what_is_held_first() -> None:
    socket = RecordingTransport()
    transport = CoalescingTransport(socket, asyncio.get_running_loop())

    transport.write(b"head")
    transport.write(b"y" * CoalescingTransport.FLUSH_AT_BYTES)
    assert socket.writes == [b"head" + b"y" * CoalescingTransport.FLUSH_AT_BYTES]
    transport.write(b"last words")
    transport.close()
    assert socket.writes[1:] == [b"last words"]
    assert socket.closed
    transport.write(b"after close")
    await asyncio.sleep(0)
    assert socket.writes[2:] == [], "nothing is written to a closing connection"
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1234)


def test_uvicorn_gets_this_protocol_unless_it_is_switched_off() -> None:
    assert uvicorn_http(True) == PROTOCOL
    assert uvicorn_http(False) == "httptools"


async def _echo(request: Request) -> Response:
    return JSONResponse({"echo": (await request.body()).decode()}, status_code=201)


async def _stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(CHUNKS):
            yield CHUNK

    return StreamingResponse(chunks(), media_type="application/octet-stream")


@asynccontextmanager
async def _server() -> AsyncIterator[int]:
    app = Starlette(routes=[Route("/echo", _echo, methods=["POST"]), Route("/stream", _stream)])
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=PROTOCOL, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def _read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head, await reader.readexactly(length)


async def test_keep_alive_pipelining_close_and_streaming_work_through_uvicorn() -> None:
    async with _server() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s"
        writer.write(request % (3, b"one"))  # then two pipelined in one packet, on the same connection
        head, body = await _read_response(reader)
        assert head.startswith(b"HTTP/1.1 201")
        assert body == b'{"echo":"one"}'
        writer.write(request % (3, b"two") + request % (5, b"three"))
        assert (await _read_response(reader))[1] == b'{"echo":"two"}'
        assert (await _read_response(reader))[1] == b'{"echo":"three"}'
        writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 4\r\n\r\nlast")
        assert (await _read_response(reader))[1] == b'{"echo":"last"}'
        assert await reader.read() == b"", "the server closes after the answer it was asked to close after"
        writer.close()

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            streamed = await client.get("/stream")
            continued = await client.post("/echo", content=b"body", headers={"Expect": "100-continue"})
        assert streamed.status_code == 200
        assert streamed.content == CHUNK * CHUNKS
        assert continued.status_code == 201
        assert continued.json() == {"echo": "body"}
