"""What every worker job gets: the process's pools, clients and settings, built once in arq `startup`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from notify.attachments.storage import AttachmentStorage
from notify.delivery.senders import EmailSender, FakeSender, SmsSender
from notify.receipts.sqs import ReceiptQueueClient
from notify.settings import Settings
from notify.templates.service import TemplateVersions


@dataclass
class WorkerContext:
    """Shared resources of one worker process."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    queue: Any  # arq's ArqRedis: enqueue_job
    email_sender: EmailSender
    sms_sender: SmsSender
    consumer: str
    fake_sender: FakeSender = field(default_factory=FakeSender)
    template_versions: TemplateVersions = field(default_factory=TemplateVersions)
    send_semaphore: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(100))
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # set on SIGTERM: stop reading the inbox
    s3: AttachmentStorage | None = None  # attachments bucket; its client opens on the first file
    sqs: Any = None  # aioboto3 SQS client of the receipt pollers
    receipt_sqs: ReceiptQueueClient | None = None  # their ReceiveMessage and DeleteMessageBatch (lean by default)
    save_engine: AsyncEngine | None = None  # inbox saves in autocommit (`db.create_save_engine`); None: on `engine`


def from_ctx(ctx: dict[str, Any]) -> WorkerContext:
    """Return the WorkerContext arq keeps in a job's `ctx`."""
    context = ctx["notify"]
    assert isinstance(context, WorkerContext)
    return context
