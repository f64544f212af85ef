"""The lean SQS calls against aioboto3's client: same request on the wire, same answers from moto, same errors."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from aiohttp import web
from arq.connections import ArqRedis
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.retries.standard import ExponentialBackoff
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify import aws
from notify.delivery.lean import SessionCredentials, open_lean_http
from notify.embedded import free_port
from notify.notifications.models import Notification
from notify.receipts import parsing, service
from notify.receipts.sqs import LeanSqsClient, open_receipt_client
from notify.settings import AwsSettings, Settings
from notify.worker import worker_resources
from tests import aws_stub
from tests.conftest import make_settings
from tests.delivery.test_lean_sender import check_signature
from tests.factories import create_sample
from tests.receipts.conftest import create_notification, delivery_event, queue_bodies, send_to_queue, sns_envelope
from tests.servers import Servers

NO_WAIT = ExponentialBackoff(random=lambda: 0.0)  # the lean client's retries, without the random backoff


@asynccontextmanager
async def open_both(settings: AwsSettings, backoff: ExponentialBackoff | None = None) -> AsyncIterator[tuple[Any, Any]]:
    """Open aioboto3's SQS client and the lean calls made on its model, endpoint and credentials."""
    session = aws.create_session(settings)
    async with (
        session.client("sqs", **aws.client_kwargs(settings)) as client,
        open_lean_http(settings) as http,
    ):
        yield client, LeanSqsClient(client, SessionCredentials(session), http, backoff)


async def _queue(client: Any, name: str, *bodies: str) -> str:
    url = str((await client.create_queue(QueueName=name))["QueueUrl"])
    for body in bodies:
        await client.send_message(QueueUrl=url, MessageBody=body)
    return url


def _without_metadata(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "ResponseMetadata"}


async def test_receive_and_delete_answer_as_the_aioboto3_client_does(servers: Servers, clean: None) -> None:
    settings = make_settings(servers).aws
    bodies = ["first", "second — café", '{"json": "body"}']
    async with open_both(settings) as (client, lean):
        suffix = str(time.monotonic_ns())
        urls = {
            "boto": await _queue(client, f"boto-{suffix}", *bodies),
            "lean": await _queue(client, f"lean-{suffix}", *bodies),
        }
        callers = {"boto": client, "lean": lean}
        received = {
            kind: await callers[kind].receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for kind, url in urls.items()
        }
        for answer in received.values():
            assert sorted(m["Body"] for m in answer["Messages"]) == sorted(bodies)
            assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert [sorted(m) for m in received["lean"]["Messages"]] == [sorted(m) for m in received["boto"]["Messages"]]

        deleted = {}
        for kind, url in urls.items():
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received[kind]["Messages"])
            ]
            entries.append({"Id": "bogus", "ReceiptHandle": "not-a-receipt-handle"})
            deleted[kind] = _without_metadata(await callers[kind].delete_message_batch(QueueUrl=url, Entries=entries))
        assert deleted["lean"] == deleted["boto"]
        assert sorted(entry["Id"] for entry in deleted["lean"]["Successful"]) == ["0", "1", "2"]
        assert [entry["Id"] for entry in deleted["lean"]["Failed"]] == ["bogus"]

        for url in urls.values():
            empty = await lean.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            assert "Messages" not in empty


async def test_a_missing_queue_raises_what_the_aioboto3_client_raises(servers: Servers, clean: None) -> None:
    settings = make_settings(servers).aws
    async with open_both(settings) as (client, lean):
        url = (await client.create_queue(QueueName=f"gone-{time.monotonic_ns()}"))["QueueUrl"]
        await client.delete_queue(QueueUrl=url)
        with pytest.raises(ClientError) as boto:
            await client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        with pytest.raises(ClientError) as lean_error:
            await lean.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    assert type(lean_error.value) is type(boto.value) is client.exceptions.QueueDoesNotExist
    assert lean_error.value.response["Error"] == boto.value.response["Error"]
    assert str(lean_error.value) == str(boto.value)


# -- a scripted endpoint --------------------------------------------------------------------------------

Handler = Callable[[web.Request, bytes], Awaitable[web.Response]]


@dataclasses.dataclass
class Seen:
    """One request as the scripted endpoint got it."""

    headers: dict[str, str]
    body: bytes
    signature_ok: bool


@asynccontextmanager
async def scripted(handle: Handler) -> AsyncIterator[tuple[str, list[Seen]]]:
    """Serve `handle` on a local port; yield its URL and the requests it got (signatures checked)."""
    seen: list[Seen] = []

    async def record(request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        ok, _ = check_signature(request.method, f"http://{request.host}{request.path_qs}", headers, body)
        seen.append(Seen(headers, body, ok))
        return await handle(request, body)

    async with aws_stub.serving(record) as url:
        yield url, seen


def _scripted_settings(servers: Servers, url: str) -> AwsSettings:
    return make_settings(servers).aws.model_copy(update={"endpoint_url": url})


def _sqs_json(payload: dict[str, Any], status: int = 200, query_error: str | None = None) -> web.Response:
    headers = {"x-amzn-RequestId": "req-1"}
    if query_error:
        headers["x-amzn-query-error"] = query_error
    return web.Response(
        status=status, body=orjson.dumps(payload), content_type="application/x-amz-json-1.0", headers=headers
    )


def _sqs_sender_error(code: str, message: str) -> web.Response:
    """A 400 as SQS's JSON protocol gives it: the shape name in `__type`, the query-compatible code in a header."""
    return _sqs_json({"__type": f"com.amazonaws.sqs#{code}", "message": message}, 400, f"{code};Sender")


@pytest.mark.parametrize("lean_http", [True, False], ids=["http11", "aiohttp"])
async def test_the_request_is_the_one_botocore_sends_and_signed(servers: Servers, lean_http: bool) -> None:
    async def empty(_: web.Request, __: bytes) -> web.Response:
        return _sqs_json({})

    async with scripted(empty) as (url, seen):
        settings = _scripted_settings(servers, url).model_copy(update={"lean_http": lean_http})
        async with open_both(settings) as (client, lean):
            params = {"QueueUrl": f"{url}/123456789012/q", "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}
            assert _without_metadata(await client.receive_message(**params)) == {}
            assert _without_metadata(await lean.receive_message(**params)) == {}
            entries = [{"Id": "0", "ReceiptHandle": "h-0"}, {"Id": "1", "ReceiptHandle": "h-1"}]
            await client.delete_message_batch(QueueUrl=params["QueueUrl"], Entries=entries)
            await lean.delete_message_batch(QueueUrl=params["QueueUrl"], Entries=entries)
    boto_receive, lean_receive, boto_delete, lean_delete = seen
    protocol = ("X-Amz-Target", "Content-Type", "x-amzn-query-mode")
    for boto, lean_seen in ((boto_receive, lean_receive), (boto_delete, lean_delete)):
        assert lean_seen.body == boto.body
        assert {name: lean_seen.headers[name] for name in protocol} == {name: boto.headers[name] for name in protocol}
        assert lean_seen.signature_ok
        assert boto.signature_ok
        signed = lean_seen.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        assert {"x-amz-target", "x-amzn-query-mode"} <= set(signed)
    assert lean_receive.headers["X-Amz-Target"] == "AmazonSQS.ReceiveMessage"
    assert lean_delete.headers["X-Amz-Target"] == "AmazonSQS.DeleteMessageBatch"


async def test_transient_failures_are_retried_as_botocore_retries_them(servers: Servers) -> None:
    calls = 0

    async def busy_twice(_: web.Request, __: bytes) -> web.Response:
        nonlocal calls
        calls += 1
        if calls <= 2:
            return web.Response(status=503, body=b"<html>busy</html>", content_type="text/html")
        return _sqs_json({"Messages": [{"MessageId": "m-1", "ReceiptHandle": "h-1", "MD5OfBody": "x", "Body": "b"}]})

    async with (
        scripted(busy_twice) as (url, seen),
        open_both(_scripted_settings(servers, url), NO_WAIT) as (_, lean),
    ):
        answer = await lean.receive_message(QueueUrl=f"{url}/1/q", MaxNumberOfMessages=10)
    assert [m["MessageId"] for m in answer["Messages"]] == ["m-1"]
    assert len(seen) == 3


async def test_throttling_past_the_retries_raises_what_the_aioboto3_client_raises(servers: Servers) -> None:
    async def throttled(_: web.Request, __: bytes) -> web.Response:
        return _sqs_sender_error("RequestThrottled", "Rate exceeded")

    async with (
        scripted(throttled) as (url, seen),
        open_both(_scripted_settings(servers, url), NO_WAIT) as (client, lean),
    ):
        params = {"QueueUrl": f"{url}/1/q", "MaxNumberOfMessages": 10}
        with pytest.raises(ClientError) as boto:
            await client.receive_message(**params)
        assert len(seen) == 3, "botocore's standard mode: three attempts"
        with pytest.raises(ClientError) as lean_error:
            await lean.receive_message(**params)
        assert len(seen) == 6
    assert type(lean_error.value) is type(boto.value)
    assert lean_error.value.response["Error"] == boto.value.response["Error"]
    assert lean_error.value.response["Error"]["Code"] == "RequestThrottled"


async def test_a_client_error_is_not_retried(servers: Servers) -> None:
    async def refused(_: web.Request, __: bytes) -> web.Response:
        return _sqs_sender_error("InvalidAddress", "The address is not valid")

    async with (
        scripted(refused) as (url, seen),
        open_both(_scripted_settings(servers, url), NO_WAIT) as (client, lean),
    ):
        with pytest.raises(ClientError) as boto:
            await client.delete_message_batch(QueueUrl="nonsense", Entries=[{"Id": "0", "ReceiptHandle": "h"}])
        with pytest.raises(ClientError) as lean_error:
            await lean.delete_message_batch(QueueUrl="nonsense", Entries=[{"Id": "0", "ReceiptHandle": "h"}])
    assert len(seen) == 2
    assert type(lean_error.value) is type(boto.value) is client.exceptions.InvalidAddress
    assert str(lean_error.value) == str(boto.value)


async def test_a_refused_connection_raises_what_the_aioboto3_client_raises(servers: Servers) -> None:
    settings = _scripted_settings(servers, f"http://127.0.0.1:{free_port()}").model_copy(
        update={"connect_timeout_s": 1.0}
    )
    async with open_both(settings, NO_WAIT) as (client, lean):
        params = {"QueueUrl": f"{settings.endpoint_url}/1/q", "MaxNumberOfMessages": 10}
        with pytest.raises(EndpointConnectionError) as boto:
            await client.receive_message(**params)
        with pytest.raises(EndpointConnectionError) as lean_error:
            await lean.receive_message(**params)
    assert str(lean_error.value) == str(boto.value)


# -- the pollers on either client ------------------------------------------------------------------------


@pytest.mark.parametrize("lean_receipts", [True, False], ids=["lean", "aioboto3"])
async def test_the_poller_drains_the_queue_with_either_client(
    receipt_settings: Settings,
    queue: ArqRedis,
    sessionmaker: async_sessionmaker[AsyncSession],
    lean_receipts: bool,
) -> None:
    aws_settings = receipt_settings.aws.model_copy(update={"lean_receipts": lean_receipts})
    settings = receipt_settings.model_copy(update={"aws": aws_settings})
    sample = await create_sample(sessionmaker, settings)
    ids = [
        await create_notification(sessionmaker, sample.service_id, sample.email_template_id, reference=f"either-{i}")
        for i in range(12)
    ]
    await send_to_queue(
        settings, aws_settings.delivery_queue, *(sns_envelope(delivery_event(f"either-{i}")) for i in range(12))
    )

    async with worker_resources(settings, queue) as app:
        assert isinstance(app.receipt_sqs, LeanSqsClient) is lean_receipts
        stats = await service.poll(app, aws_settings.delivery_queue, parsing.parse_ses)

    assert (stats.received, stats.applied, stats.deleted) == (12, 12, 12)
    async with sessionmaker() as session:
        found = (await session.execute(select(Notification.status).where(Notification.id.in_(ids)))).scalars().all()
    assert list(found) == ["delivered"] * 12
    assert await queue_bodies(settings, aws_settings.delivery_queue) == []


async def test_with_lean_receipts_off_the_pollers_use_the_aioboto3_client(servers: Servers) -> None:
    settings = make_settings(servers).aws.model_copy(update={"lean_receipts": False})
    sentinel = object()
    async with open_receipt_client(aws.create_session(settings), settings, sentinel) as chosen:
        assert chosen is sentinel
