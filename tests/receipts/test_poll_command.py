"""`notify receipts poll`: the pollers run once from the command line against moto and the test database."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.notifications.models import Notification
from notify.settings import Settings
from tests.factories import create_sample
from tests.receipts.conftest import create_notification, delivery_event, queue_bodies, send_to_queue, sns_envelope
from tests.servers import Servers

NOTIFY = Path(sys.executable).parent / "notify"


async def _notify(settings: Settings, servers: Servers, *args: str) -> str:
    """Run `notify <args>` in a process of its own (it configures logging for its whole process); return stdout."""
    aws = settings.aws
    environment = {
        **os.environ,
        "DATABASE_URL": servers.database_url,
        "REDIS_URL": servers.redis_url,
        "AWS_ENDPOINT_URL": servers.aws_url,
        "NOTIFY_AWS__BOUNCE_QUEUE": aws.bounce_queue,
        "NOTIFY_AWS__DELIVERY_QUEUE": aws.delivery_queue,
        "NOTIFY_AWS__SMS_RECEIPT_QUEUE": aws.sms_receipt_queue,
        "NOTIFY_AWS__RECEIPT_WAIT_TIME_S": "0",
        "NOTIFY_AWS__RECEIPT_RECEIVE_CONCURRENCY": "1",  # exact counts: see receipt_settings
    }
    process = await asyncio.create_subprocess_exec(
        str(NOTIFY),
        *args,
        env=environment,
        cwd=servers.root,  # no stray .env
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()[-3000:]
    return stdout.decode()


async def test_poll_applies_deliveries_and_prints_counts(
    receipt_settings: Settings, servers: Servers, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, receipt_settings)
    notification_id = await create_notification(
        sessionmaker, sample.service_id, sample.email_template_id, reference="cli-delivered"
    )
    queue_name = receipt_settings.aws.delivery_queue
    await send_to_queue(
        receipt_settings,
        queue_name,
        sns_envelope(delivery_event("cli-delivered")),
        sns_envelope(delivery_event("cli-not-saved-yet")),
    )

    output = await _notify(receipt_settings, servers, "receipts", "poll", "--queue", "deliveries", "--json")

    [line] = output.splitlines()  # logs go to stderr: stdout holds the results only
    report = orjson.loads(line)
    assert report.pop("elapsed_s") >= 0
    assert report.pop("cpu_s") >= 0
    assert report == {
        "queue": "deliveries",
        "queue_name": queue_name,
        "received": 2,
        "applied": 1,
        "deleted": 1,
        "unknown": 1,
        "malformed": 0,
    }
    async with sessionmaker() as session:
        row = await session.get(Notification, notification_id)
    assert row is not None
    assert row.status == "delivered"
    assert await queue_bodies(receipt_settings, queue_name) == []  # the unknown one waits out its visibility

    lines = (await _notify(receipt_settings, servers, "receipts", "poll")).splitlines()

    assert [line.split(" ", 1)[0] for line in lines] == ["bounces", "deliveries", "sms"]
    assert all("received 0, applied 0, deleted 0, unknown 0, malformed 0" in line for line in lines)
