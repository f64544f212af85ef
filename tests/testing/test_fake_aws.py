from __future__ import annotations

import asyncio
import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aioboto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from notify.testing.fake_aws import FakeAws, FakeAwsConfig, FakeAwsServer, create_fake_aws

# `max_attempts` counts retries after the first call; `total_max_attempts` counts every call.
NO_RETRIES = Config(retries={"total_max_attempts": 1})
QUEUE = "receipts"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAwsServer]:
    with FakeAwsServer(FakeAwsConfig(queues=(QUEUE,))) as running:
        yield running


@pytest.fixture
def fake(server: FakeAwsServer) -> Iterator[FakeAws]:
    server.fake.reset()
    yield server.fake
    server.fake.configure(latency_s=0.0, error_rate=0.0, fail_first_n=0, sqs_visibility_timeout_s=30.0)


@asynccontextmanager
async def aws_client(service: str, url: str) -> AsyncIterator[Any]:
    async with aioboto3.Session().client(
        service,
        endpoint_url=url,
        region_name="eu-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=NO_RETRIES,
    ) as client:
        yield client


async def send_email(ses: Any, subject: str = "Your code") -> dict[str, Any]:
    response: dict[str, Any] = await ses.send_email(
        FromEmailAddress="notify@example.gov.uk",
        Destination={"ToAddresses": ["someone@example.com"]},
        Content={
            "Simple": {
                "Subject": {"Data": subject},
                "Body": {"Text": {"Data": "Your code is 123"}, "Html": {"Data": "<p>Your code is 123</p>"}},
            }
        },
        ConfigurationSetName="notify-events",
        EmailTags=[{"Name": "service", "Value": "s1"}],
    )
    return response


async def test_send_email_returns_id_and_is_recorded(server: FakeAwsServer, fake: FakeAws) -> None:
    async with aws_client("sesv2", server.url) as ses:
        first = await send_email(ses)
        second = await send_email(ses, subject="Second")

    assert first["MessageId"] != second["MessageId"]
    [recorded, _] = fake.recorded_emails()
    assert recorded["message_id"] == first["MessageId"]
    assert recorded["from_address"] == "notify@example.gov.uk"
    assert recorded["to"] == ["someone@example.com"]
    assert recorded["subject"] == "Your code"
    assert recorded["text"] == "Your code is 123"
    assert recorded["html"] == "<p>Your code is 123</p>"
    assert recorded["configuration_set"] == "notify-events"
    assert recorded["tags"] == {"service": "s1"}
    assert fake.counters.sent_emails == 2


async def test_raw_email_is_recorded_decoded(server: FakeAwsServer, fake: FakeAws) -> None:
    mime = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: Raw\r\n\r\nbody"
    async with aws_client("sesv2", server.url) as ses:
        await ses.send_email(Content={"Raw": {"Data": mime}})

    assert fake.recorded_emails()[0]["raw"] == mime.decode()


async def test_create_email_identity_succeeds(server: FakeAwsServer, fake: FakeAws) -> None:
    async with aws_client("sesv2", server.url) as ses:
        response = await ses.create_email_identity(EmailIdentity="notify.example.gov.uk")

    assert response["IdentityType"] == "DOMAIN"
    assert response["VerifiedForSendingStatus"] is True


async def test_fail_first_n_throttles_then_succeeds() -> None:
    with FakeAwsServer(FakeAwsConfig(fail_first_n=2)) as server:
        async with aws_client("sesv2", server.url) as ses:
            for _ in range(2):
                with pytest.raises(ClientError) as caught:
                    await send_email(ses)
                assert caught.value.response["Error"]["Code"] == "TooManyRequestsException"
                assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
            assert (await send_email(ses))["MessageId"]

        assert server.fake.counters.errors_returned == 2
        assert server.fake.counters.sent_emails == 1


async def test_error_rate_with_seed_is_repeatable() -> None:
    outcomes = []
    for _ in range(2):
        fake = create_fake_aws(FakeAwsConfig(error_rate=0.5, seed=7))
        transport = httpx.ASGITransport(app=fake.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
            statuses = [
                (
                    await client.post(
                        "/v2/email/outbound-emails",
                        content=b'{"FromEmailAddress":"a@b.c","Destination":{"ToAddresses":["d@e.f"]},'
                        b'"Content":{"Simple":{"Subject":{"Data":"s"},"Body":{"Text":{"Data":"t"}}}}}',
                        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x"},
                    )
                ).status_code
                for _ in range(40)
            ]
        outcomes.append(statuses)
        assert fake.counters.errors_returned == statuses.count(429)

    assert outcomes[0] == outcomes[1]
    assert 5 < outcomes[0].count(429) < 35
    assert set(outcomes[0]) == {200, 429}


async def test_sns_publish_is_recorded(server: FakeAwsServer, fake: FakeAws) -> None:
    async with aws_client("sns", server.url) as sns:
        response = await sns.publish(
            PhoneNumber="+447700900123",
            Message="Your code is 123",
            MessageAttributes={"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}},
        )

    [recorded] = fake.recorded_sms()
    assert recorded["message_id"] == response["MessageId"]
    assert recorded["phone_number"] == "+447700900123"
    assert recorded["message"] == "Your code is 123"
    assert recorded["attributes"] == {"AWS.SNS.SMS.SMSType": "Transactional"}
    assert fake.counters.published_sms == 1


async def test_sns_publish_throttled(server: FakeAwsServer, fake: FakeAws) -> None:
    fake.configure(fail_first_n=1)
    async with aws_client("sns", server.url) as sns:
        with pytest.raises(ClientError) as caught:
            await sns.publish(PhoneNumber="+447700900123", Message="hi")
        assert (await sns.publish(PhoneNumber="+447700900123", Message="hi"))["MessageId"]

    assert caught.value.response["Error"]["Code"] == "Throttling"
    assert caught.value.response["Error"]["Type"] == "Sender"
    assert fake.counters.errors_returned == 1
    assert fake.counters.published_sms == 1


async def test_sqs_receive_and_delete_in_batches(server: FakeAwsServer, fake: FakeAws) -> None:
    bodies = [f'{{"Type":"Notification","Message":"event {n}"}}' for n in range(25)]
    fake.enqueue_sqs(QUEUE, bodies)
    received: list[str] = []
    async with aws_client("sqs", server.url) as sqs:
        queue_url = (await sqs.get_queue_url(QueueName=QUEUE))["QueueUrl"]
        batch_sizes = []
        while True:
            response = await sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=20)
            messages = response.get("Messages", [])
            if not messages:
                break
            batch_sizes.append(len(messages))
            for message in messages:
                assert message["MD5OfBody"] == hashlib.md5(message["Body"].encode()).hexdigest()
                received.append(message["Body"])
            deleted = await sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            assert len(deleted["Successful"]) == len(messages)
            assert not deleted.get("Failed")

    assert batch_sizes == [10, 10, 5]
    assert sorted(received) == sorted(bodies)
    assert fake.counters.sqs_received == 25
    assert fake.counters.sqs_deleted == 25
    assert fake.stats()["queues"][QUEUE] == {"visible": 0, "in_flight": 0}


async def test_sqs_undeleted_message_comes_back_after_visibility_timeout(server: FakeAwsServer, fake: FakeAws) -> None:
    fake.configure(sqs_visibility_timeout_s=0.05)
    fake.enqueue_sqs(QUEUE, ["receipt"])
    async with aws_client("sqs", server.url) as sqs:
        queue_url = (await sqs.get_queue_url(QueueName=QUEUE))["QueueUrl"]
        first = (await sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10))["Messages"]
        assert "Messages" not in await sqs.receive_message(QueueUrl=queue_url)
        await asyncio.sleep(0.1)
        again = (
            await sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["ApproximateReceiveCount"]
            )
        )["Messages"]
        await sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=again[0]["ReceiptHandle"])

    assert again[0]["MessageId"] == first[0]["MessageId"]
    assert again[0]["ReceiptHandle"] != first[0]["ReceiptHandle"]
    assert again[0]["Attributes"] == {"ApproximateReceiveCount": "2"}
    assert fake.counters.sqs_received == 2
    assert fake.counters.sqs_deleted == 1


async def test_sqs_unknown_queue_is_an_error(server: FakeAwsServer, fake: FakeAws) -> None:
    async with aws_client("sqs", server.url) as sqs:
        with pytest.raises(ClientError) as caught:
            await sqs.get_queue_url(QueueName="no-such-queue")

    assert caught.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


async def test_latency_delays_each_call(server: FakeAwsServer, fake: FakeAws) -> None:
    async with aws_client("sesv2", server.url) as ses:
        await send_email(ses)  # connection set up outside the timed call
        fake.configure(latency_s=0.2)
        started = time.perf_counter()
        await send_email(ses)
        elapsed = time.perf_counter() - started

    assert elapsed >= 0.2


async def test_admin_routes_over_http(server: FakeAwsServer, fake: FakeAws) -> None:
    async with aws_client("sesv2", server.url) as ses:
        response = await send_email(ses)
    async with httpx.AsyncClient(base_url=server.url) as client:
        stats = (await client.get("/_fake/stats")).json()
        emails = (await client.get("/_fake/emails", params={"limit": 10})).json()
        enqueued = (await client.post("/_fake/queues/bounces", json=["a", "b"])).json()
        after_enqueue = (await client.get("/_fake/stats")).json()
        await client.post("/_fake/reset")
        after_reset = (await client.get("/_fake/stats")).json()

    assert stats["sent_emails"] == 1
    assert stats["errors_returned"] == 0
    assert emails[0]["message_id"] == response["MessageId"]
    assert emails[0]["subject"] == "Your code"
    assert enqueued == {"enqueued": 2}
    assert after_enqueue["queues"]["bounces"] == {"visible": 2, "in_flight": 0}
    assert after_reset["sent_emails"] == 0
    assert after_reset["queues"]["bounces"] == {"visible": 0, "in_flight": 0}


async def test_config_can_change_at_run_time_over_http(server: FakeAwsServer, fake: FakeAws) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        changed = await client.post("/_fake/config", json={"fail_first_n": 1})
        refused = await client.post("/_fake/config", json={"queues": ["x"]})
    async with aws_client("sesv2", server.url) as ses:
        with pytest.raises(ClientError):
            await send_email(ses)

    assert changed.json()["fail_first_n"] == 1
    assert refused.status_code == 400


async def test_unknown_route_names_the_route(server: FakeAwsServer, fake: FakeAws) -> None:
    async with aws_client("sesv2", server.url) as ses:
        with pytest.raises(ClientError) as caught:
            await ses.list_email_identities()
    async with aws_client("sns", server.url) as sns:
        with pytest.raises(ClientError) as caught_sns:
            await sns.create_topic(Name="t")
    async with httpx.AsyncClient(base_url=server.url) as client:
        unsigned = await client.post("/v2/email/outbound-emails", json={})

    assert caught.value.response["Error"]["Code"] == "UnknownOperationException"
    assert "GET /v2/email/identities" in caught.value.response["Error"]["Message"]
    assert caught_sns.value.response["Error"]["Code"] == "InvalidAction"
    assert "CreateTopic" in caught_sns.value.response["Error"]["Message"]
    assert unsigned.status_code == 403
    assert fake.counters.bad_requests == 3


async def test_malformed_send_email_is_rejected(server: FakeAwsServer, fake: FakeAws) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post(
            "/v2/email/outbound-emails",
            json={"Content": {"Simple": {}}, "FromEmailAddress": "a@example.com"},
            headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x"},
        )

    assert response.status_code == 400
    assert response.json() == {"__type": "BadRequestException", "message": "Destination needs at least one address"}
    assert fake.counters.sent_emails == 0


def test_runs_as_a_module() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "notify.testing.fake_aws", "--port", str(port), "--latency-ms", "1", "--queue", "q"],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                stats = httpx.get(f"http://127.0.0.1:{port}/_fake/stats").json()
                break
            except httpx.TransportError:
                assert process.poll() is None, "fake AWS process exited"
                assert time.monotonic() < deadline, "fake AWS process did not answer"
                time.sleep(0.05)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)

    assert stats["queues"] == {"q": {"visible": 0, "in_flight": 0}}
    assert b"Warning" not in stderr
