"""Fixtures of the callback tests: a real HTTP receiver on 127.0.0.1 and fast callback retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.auth.keys import SecretBox
from notify.callbacks import service as callback_service
from notify.context import WorkerContext
from notify.db import transaction
from notify.settings import Settings
from notify.worker import worker_resources
from tests.conftest import make_settings
from tests.factories import Sample
from tests.servers import Servers

TOKEN = "callback-token-123"


@dataclass
class Endpoint:
    """A callback receiver answering a scripted list of statuses (then 200)."""

    answers: list[int]
    url: str = ""
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.headers.get("Authorization", ""), await request.json()))
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, text="ok")


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    receiver = Endpoint(answers=[])
    application = web.Application()
    application.router.add_post("/callback", receiver.handle)
    runner = web.AppRunner(application)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/callback"
    yield receiver
    await runner.cleanup()


@pytest.fixture
def callback_settings(servers: Servers, clean: None) -> Settings:
    base = make_settings(servers)
    worker = base.worker.model_copy(update={"callback_retry_base_delay_s": 0.01, "callback_suspend_after": 5})
    return make_settings(servers, worker=worker)


@pytest.fixture
async def app(callback_settings: Settings, queue: ArqRedis) -> AsyncIterator[WorkerContext]:
    async with worker_resources(callback_settings, queue) as context:
        yield context


async def register(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    sample: Sample,
    url: str,
    callback_type: str = "delivery_status",
) -> None:
    """Register the service's callback of this type at `url`."""
    box = SecretBox(settings.api.secret_key.get_secret_value())
    async with transaction(sessionmaker) as session:
        await callback_service.set_callback(
            session, box, sample.service_id, url=url, bearer_token=TOKEN, callback_type=callback_type, allow_http=True
        )
