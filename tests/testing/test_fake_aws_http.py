"""The fake AWS's own HTTP/1.1 server: keep-alive, pipelining in order, chunked bodies, Expect, close, garbage.

And the same fake as an ASGI app, for users who serve it with their own server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest

from notify.testing.fake_aws import FakeAws, FakeAwsConfig, FakeAwsServer, create_fake_aws

SIGNED = b"Authorization: AWS4-HMAC-SHA256 Credential=x/20261203/eu-west-2/ses/aws4_request\r\n"
EMAIL = orjson.dumps(
    {
        "FromEmailAddress": "notify@example.gov.uk",
        "Destination": {"ToAddresses": ["someone@example.com"]},
        "Content": {"Simple": {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "Hello"}}}},
    }
)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAwsServer]:
    with FakeAwsServer() as running:
        yield running


@pytest.fixture
def fake(server: FakeAwsServer) -> Iterator[FakeAws]:
    server.fake.reset()
    yield server.fake
    server.fake.configure(latency_s=0.0)


@pytest.fixture
async def connection(server: FakeAwsServer) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    yield reader, writer
    writer.close()


def send_email_request(extra_headers: bytes = b"") -> bytes:
    return (
        b"POST /v2/email/outbound-emails HTTP/1.1\r\nHost: fake\r\nContent-Type: application/json\r\n"
        + SIGNED
        + extra_headers
        + b"Content-Length: %d\r\n\r\n" % len(EMAIL)
        + EMAIL
    )


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    status_line, *lines = head[:-4].split(b"\r\n")
    headers = {name.lower(): value for name, _, value in (line.partition(b": ") for line in lines)}
    body = await reader.readexactly(int(headers[b"content-length"]))
    return int(status_line.split()[1]), headers, body


async def test_keep_alive_answers_requests_one_after_another(
    fake: FakeAws, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    reader, writer = connection
    ids = []
    for _ in range(3):
        writer.write(send_email_request())
        status, headers, body = await read_response(reader)
        assert (status, headers[b"content-type"]) == (200, b"application/json")
        ids.append(orjson.loads(body)["MessageId"])
    assert len(set(ids)) == 3
    assert fake.counters.sent_emails == 3


async def test_pipelined_requests_are_answered_in_order(
    fake: FakeAws, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    """The admin request behind a delayed SendEmail is handled at once, but its answer waits its turn."""
    fake.configure(latency_s=0.2)
    reader, writer = connection
    writer.write(send_email_request() + b"GET /_fake/stats HTTP/1.1\r\nHost: fake\r\n\r\n")
    first = await read_response(reader)
    second = await read_response(reader)
    assert first[0] == 200
    assert b"MessageId" in first[2]
    assert orjson.loads(second[2])["sent_emails"] == 0, "stats were read while the SendEmail was still delayed"


async def test_a_delayed_send_whose_connection_closes_is_dropped_and_the_server_goes_on(
    server: FakeAwsServer, fake: FakeAws, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    """A send waits out its latency on a timer; if its client has gone by then, nothing is answered or counted."""
    fake.configure(latency_s=0.2)
    _, writer = connection
    writer.write(send_email_request())
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.4)
    assert fake.counters.sent_emails == 0
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(send_email_request())
        status, _, body = await read_response(reader)
    finally:
        writer.close()
    assert status == 200, body
    assert fake.counters.sent_emails == 1


async def test_chunked_body_and_expect_continue(
    fake: FakeAws, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    reader, writer = connection
    writer.write(
        b"POST /v2/email/outbound-emails HTTP/1.1\r\nHost: fake\r\nContent-Type: application/json\r\n"
        + SIGNED
        + b"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5) == b"HTTP/1.1 100 Continue\r\n\r\n"
    half = len(EMAIL) // 2
    for chunk in (EMAIL[:half], EMAIL[half:]):
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    writer.write(b"0\r\n\r\n")
    status, _, body = await read_response(reader)
    assert status == 200, body
    assert fake.recorded_emails()[0]["subject"] == "Hi"


async def test_connection_close_is_honoured(
    fake: FakeAws, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    reader, writer = connection
    writer.write(send_email_request(b"Connection: close\r\n"))
    status, headers, _ = await read_response(reader)
    assert (status, headers[b"connection"]) == (200, b"close")
    assert await asyncio.wait_for(reader.read(), timeout=5) == b"", "the server closed the connection"


async def test_a_request_that_does_not_parse_gets_400_and_a_closed_connection(
    fake: FakeAws, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    reader, writer = connection
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    status, _, _ = await read_response(reader)
    assert status == 400
    assert await asyncio.wait_for(reader.read(), timeout=5) == b""


async def test_percent_encoded_paths_and_query_strings(server: FakeAwsServer, fake: FakeAws) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        enqueued = await client.post("/_fake/queues/with%20space", json=["a"])
        emails = await client.get("/_fake/emails", params={"limit": 1})
    assert enqueued.json() == {"enqueued": 1}
    assert fake.stats()["queues"]["with space"] == {"visible": 1, "in_flight": 0}
    assert emails.json() == []


async def test_the_fake_as_an_asgi_app() -> None:
    fake = create_fake_aws(FakeAwsConfig())
    transport = httpx.ASGITransport(app=fake.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        sent = await client.post(
            "/v2/email/outbound-emails",
            content=EMAIL,
            headers={"Authorization": SIGNED.split(b": ", 1)[1].strip().decode()},
        )
        stats = await client.get("/_fake/stats")
    assert sent.status_code == 200
    assert "MessageId" in sent.json()
    assert stats.json()["sent_emails"] == 1
