"""The lean HTTP/1.1 client against a server whose every byte the test writes: reuse, framing, failures, TLS."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from notify.delivery.http11 import MAX_BODY_BYTES, Http11Client, HttpError, Origin, ServerDisconnectedError


@dataclass
class Received:
    """One request as the server read it."""

    connection: int
    head: list[str]
    body: bytes


# What the server writes back for a request: bytes to send (then keep reading), or None to send nothing.
Answer = Callable[[Received], bytes | None]


@dataclass
class ScriptedServer:
    """Reads HTTP/1.1 requests and answers each with what `answer` returns; counts connections."""

    answer: Answer
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    close_after_answer: bool = False
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def drop_connections(self) -> None:
        """Close every open connection from the server's side, as a restarting endpoint does."""
        for writer in self.writers:
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        self.connections += 1
        number = self.connections
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[:-2]
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = next(int(line.split(":", 1)[1]) for line in head if line.lower().startswith("content-length"))
                received = Received(number, head, await reader.readexactly(length))
                self.requests.append(received)
                answer = self.answer(received)
                if answer is not None:
                    writer.write(answer)
                    await writer.drain()
                if self.close_after_answer:
                    return
        finally:
            self.open_now -= 1
            writer.close()
            with suppress(Exception):
                await writer.wait_closed()


def ok(body: bytes = b'{"MessageId": "m-1"}', *, extra: str = "") -> bytes:
    """A 200 with a Content-Length body."""
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Amzn-RequestId: r-1\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def echo(request: Received) -> bytes:
    """Answer with the request's own body."""
    return ok(request.body)


@asynccontextmanager
async def serving(
    answer: Answer, ssl_context: ssl.SSLContext | None = None, port: int = 0
) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer(answer)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", port, ssl=ssl_context, reuse_address=True)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


def client(**overrides: float) -> Http11Client:
    settings: dict[str, float] = {
        "limit": 10,
        "keepalive_timeout_s": 12.0,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 2.0,
    }
    settings |= overrides
    return Http11Client(
        limit=int(settings["limit"]),
        keepalive_timeout_s=settings["keepalive_timeout_s"],
        connect_timeout_s=settings["connect_timeout_s"],
        read_timeout_s=settings["read_timeout_s"],
        ssl_context=ssl.create_default_context(),
    )


def origin(server: ScriptedServer, scheme: str = "http") -> Origin:
    return Origin.from_url(f"{scheme}://127.0.0.1:{server.port}/v2/email/outbound-emails")


HEADERS = {
    "Host": "email.eu-west-2.amazonaws.com",
    "Content-Type": "application/json",
    "X-Amz-Date": "20261202T000000Z",
}


def test_origin_splits_the_url() -> None:
    assert Origin.from_url("https://email.eu-west-2.amazonaws.com/v2/email/outbound-emails") == Origin(
        "https", "email.eu-west-2.amazonaws.com", 443, "/v2/email/outbound-emails"
    )
    assert Origin.from_url("http://127.0.0.1:4566") == Origin("http", "127.0.0.1", 4566, "/")
    assert Origin.from_url("http://sns.test/?a=1").target == "/?a=1"
    with pytest.raises(ValueError, match="absolute"):
        Origin.from_url("/relative")


async def test_requests_go_out_as_written_and_reuse_one_connection() -> None:
    http = client()
    async with serving(echo) as server:
        answers = [await http.post(origin(server), HEADERS, f'{{"n": {n}}}'.encode()) for n in range(5)]
    await http.close()
    assert [answer.body for answer in answers] == [f'{{"n": {n}}}'.encode() for n in range(5)]
    assert answers[0].status == 200
    assert answers[0].headers.get("x-amzn-requestid") == answers[0].headers.get("X-Amzn-RequestId") == "r-1"
    assert server.connections == 1
    assert http.opened == 1
    first = server.requests[0]
    assert first.head == [
        "POST /v2/email/outbound-emails HTTP/1.1",
        "Host: email.eu-west-2.amazonaws.com",
        "Content-Type: application/json",
        "X-Amz-Date: 20261202T000000Z",
        "Content-Length: 8",
    ]


async def test_a_chunked_answer_is_read_whole() -> None:
    chunked = (
        b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\nx-amzn-ErrorType: BadRequestException\r\n\r\n"
        b'5\r\n{"mes\r\n11\r\nsage": "no such"}\r\n0\r\n\r\n'
    )
    http = client()
    async with serving(lambda _: chunked) as server:
        answer = await http.post(origin(server), HEADERS, b"{}")
        again = await http.post(origin(server), HEADERS, b"{}")
    await http.close()
    assert answer.status == 400
    assert answer.body == b'{"message": "no such"}'
    assert answer.headers.get("X-Amzn-ErrorType") == "BadRequestException"
    assert again.body == answer.body
    assert server.connections == 1


async def test_an_answer_without_length_or_chunks_ends_when_the_server_closes() -> None:
    http = client()
    async with serving(
        lambda _: b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"MessageId": "eof"}'
    ) as server:
        server.close_after_answer = True
        answers = [await http.post(origin(server), HEADERS, b"{}") for _ in range(2)]
    await http.close()
    assert [answer.body for answer in answers] == [b'{"MessageId": "eof"}'] * 2
    assert server.connections == 2


async def test_an_answer_that_closes_the_connection_is_not_reused() -> None:
    http = client()
    async with serving(lambda _: ok(extra="Connection: close\r\n")) as server:
        server.close_after_answer = True
        for _ in range(3):
            assert (await http.post(origin(server), HEADERS, b"{}")).status == 200
    await http.close()
    assert server.connections == http.opened == 3


async def test_a_connection_closed_mid_answer_is_an_error_and_the_next_request_opens_a_new_one() -> None:
    def cut_short(request: Received) -> bytes:
        if request.connection == 1:
            return b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"Mess'
        return ok()

    http = client()
    async with serving(cut_short) as server:
        server.close_after_answer = True
        with pytest.raises(ServerDisconnectedError) as failure:
            await http.post(origin(server), HEADERS, b"{}")
        assert isinstance(failure.value, OSError)  # the senders treat it as a transient network failure
        assert (await http.post(origin(server), HEADERS, b"{}")).body == b'{"MessageId": "m-1"}'
    await http.close()
    assert server.connections == 2


async def test_a_server_that_never_answers_times_out_and_its_late_answer_is_never_read() -> None:
    def late_first(request: Received) -> bytes | None:
        return None if request.connection == 1 else ok(b'{"MessageId": "second"}')

    http = client(read_timeout_s=0.2)
    async with serving(late_first) as server:
        with pytest.raises(TimeoutError):
            await http.post(origin(server), HEADERS, b"{}")
        answer = await http.post(origin(server), HEADERS, b"{}")
    await http.close()
    assert answer.body == b'{"MessageId": "second"}'
    assert server.connections == 2


async def test_after_the_endpoint_restarts_the_pool_connects_again_instead_of_using_dead_connections() -> None:
    http = client()
    async with serving(lambda _: ok(b'{"MessageId": "before"}')) as before:
        port = before.port
        assert (await http.post(origin(before), HEADERS, b"{}")).body == b'{"MessageId": "before"}'
        before.drop_connections()
    await asyncio.sleep(0.05)  # the client's loop sees the close of its idle connection
    async with serving(lambda _: ok(b'{"MessageId": "after"}'), port=port) as after:
        assert (await http.post(origin(after), HEADERS, b"{}")).body == b'{"MessageId": "after"}'
    await http.close()
    assert http.opened == 2


async def test_a_refused_connection_is_an_os_error() -> None:
    http = client()
    async with serving(echo) as server:
        port = server.port
    with pytest.raises(OSError):  # noqa: PT011 - refused: whichever OSError the platform raises
        await http.post(Origin("http", "127.0.0.1", port, "/"), HEADERS, b"{}")
    await http.close()


async def test_an_idle_connection_past_the_keepalive_timeout_is_not_reused() -> None:
    http = client(keepalive_timeout_s=0.0)
    async with serving(echo) as server:
        await http.post(origin(server), HEADERS, b"{}")
        await asyncio.sleep(0.01)
        await http.post(origin(server), HEADERS, b"{}")
    await http.close()
    assert server.connections == 2


async def test_no_more_than_limit_connections_are_open_at_once() -> None:
    http = client(limit=2)
    async with serving(echo) as server:
        # Twelve requests at once (without the limit, each would open its own connection): two carry them all.
        posts = [asyncio.create_task(http.post(origin(server), HEADERS, f"{n}".encode())) for n in range(12)]
        answers = await asyncio.gather(*posts)
    await http.close()
    assert sorted(answer.body for answer in answers) == sorted(f"{n}".encode() for n in range(12))
    assert server.most_open <= 2
    assert http.opened <= 2


async def test_header_text_that_could_split_the_request_is_refused_before_anything_is_sent() -> None:
    http = client()
    async with serving(echo) as server:
        with pytest.raises(ValueError, match="line break"):
            await http.post(origin(server), {**HEADERS, "X-Amz-Date": "x\r\nX-Injected: 1"}, b"{}")
    await http.close()
    assert server.requests == []


async def test_an_answer_bigger_than_any_provider_answer_is_an_error() -> None:
    huge = b"x" * (MAX_BODY_BYTES + 1)
    http = client()
    async with serving(lambda _: ok(huge)) as server:
        with pytest.raises(HttpError, match="over"):
            await http.post(origin(server), HEADERS, b"{}")
    await http.close()


async def test_https_verifies_the_server_and_keeps_the_connection(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    http = Http11Client(limit=4, keepalive_timeout_s=12, connect_timeout_s=2, read_timeout_s=2, ssl_context=trusting)
    untrusting = client()
    async with serving(echo, server_tls) as server:
        answers = [await http.post(origin(server, "https"), HEADERS, b'{"tls": true}') for _ in range(3)]
        with pytest.raises(ssl.SSLError):
            await untrusting.post(origin(server, "https"), HEADERS, b"{}")
    await http.close()
    await untrusting.close()
    assert {answer.body for answer in answers} == {b'{"tls": true}'}
    assert http.opened == 1


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """Write a certificate for 127.0.0.1 and its key; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
