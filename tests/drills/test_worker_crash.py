"""Drill: kill -9 a `notify worker` mid-run with 2,000 notifications; a second worker recovers everything."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from httpx import AsyncClient
from pydantic import BaseModel, SecretStr
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.inbox.schemas import InboxEntry
from notify.inbox.streams import FIELD, Stream
from notify.notifications.models import Notification
from notify.settings import Settings
from notify.testing.fake_aws import FakeAwsConfig, FakeAwsServer
from tests.factories import create_sample
from tests.recovery.conftest import fake_aws_settings, post_emails
from tests.servers import Servers

pytestmark = pytest.mark.drill

TOTAL = 2_000
STREAM = Stream("email", "normal")


def settings_env(settings: Settings) -> dict[str, str]:
    """Translate Settings into the NOTIFY_* variables a subprocess reads them from."""
    env: dict[str, str] = {}
    for name, value in settings:
        if isinstance(value, BaseModel):
            dumped = value.model_dump(mode="json")
            for field, field_value in value:
                if field_value is None:
                    continue
                if isinstance(field_value, SecretStr):
                    plain = field_value.get_secret_value()
                elif isinstance(dumped[field], (list, dict)):
                    plain = orjson.dumps(dumped[field]).decode()
                else:
                    plain = str(dumped[field])
                env[f"NOTIFY_{name.upper()}__{field.upper()}"] = plain
        elif value is not None:
            env[f"NOTIFY_{name.upper()}"] = str(value)
    return env


@pytest.fixture
def slow_fake_aws() -> Iterator[FakeAwsServer]:
    """Fake SES answering in 100 ms, so that a kill lands while sends are in flight."""
    with FakeAwsServer(FakeAwsConfig(latency_s=0.1)) as server:
        yield server


def start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """Run `notify worker` in its own process with `settings`, logging to `log_path`."""
    env = {**os.environ, **settings_env(settings), "NOTIFY_LOG_FORMAT": "json"}
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", "from notify.cli import main; main()", "worker"],
            env=env,
            cwd=log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def wait_for(condition: Any, timeout_s: float, what: str, process: subprocess.Popen[bytes]) -> None:
    """Poll the async `condition()` until true, failing early if the worker `process` exits."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if process.poll() is not None:
            raise AssertionError(f"the worker exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_a_worker_killed_mid_run_loses_nothing_and_resends_at_most_what_was_in_flight(
    servers: Servers,
    clean: None,
    slow_fake_aws: FakeAwsServer,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    client: AsyncClient,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    settings = fake_aws_settings(
        servers,
        slow_fake_aws,
        batch_size=100,
        inflight_timeout_s=2,
        inflight_check_interval_s=1,
        replay_after_s=3,
        replay_interval_s=1,
        # The lease must outlive any job that may still be sending (job timeout), or a live send gets replayed.
        job_timeout_s=8,
        send_lease_s=10,
    )
    sample = await create_sample(sessionmaker, settings)
    [first_id] = await post_emails(client, sample, 1)
    template = InboxEntry.from_bytes((await redis.xrange(STREAM.inbox, count=1))[0][1][FIELD])
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(1, TOTAL):
            address = f"drill{n}@example.com"
            clone = template.model_copy(update={"id": uuid.uuid4(), "to": address, "normalised_to": address})
            pipe.xadd(STREAM.inbox, {FIELD: clone.to_bytes()})
        await pipe.execute()
    fake = slow_fake_aws.fake

    async def count(*conditions: Any) -> int:
        async with sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(Notification).where(*conditions)) or 0)

    log_path = tmp_path / "worker.log"
    first = start_worker(settings, log_path)
    try:
        await wait_for(lambda: _true(fake.counters.sent_emails >= 300), 40, "the first worker to send 300", first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    sent_before_kill = fake.counters.sent_emails
    in_flight_sends = await count(Notification.status == "sending", Notification.reference.is_(None))
    assert sent_before_kill < TOTAL, "the kill must land mid-run"

    second = start_worker(settings, log_path)
    try:
        await wait_for(
            lambda: _equal(count(Notification.reference.is_not(None)), TOTAL), 45, "every notification sent", second
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    async with sessionmaker() as session:
        rows = (await session.execute(select(Notification.to, Notification.status, Notification.reference))).all()
    assert len(rows) == TOTAL
    assert {status for _, status, _ in rows} == {"sending"}
    sends = Counter(email["to"][0] for email in fake.recorded_emails())
    assert set(sends) == {to for to, _, _ in rows}, "every notification reached SES"
    resent = sum(times - 1 for times in sends.values())
    record_property("drill", {"sent_before_kill": sent_before_kill, "in_flight": in_flight_sends, "resent": resent})
    # A send SES accepted just before the kill, but never recorded, is the only way to send twice.
    assert resent <= in_flight_sends, (resent, in_flight_sends)
    recorded_ids = {email["message_id"] for email in fake.recorded_emails()}
    assert {reference for _, _, reference in rows} <= recorded_ids
    assert await redis.xlen(STREAM.inbox) == 0
    assert first_id


async def _true(value: bool) -> bool:
    return value


async def _equal(awaitable: Any, expected: int) -> bool:
    return bool(await awaitable == expected)
