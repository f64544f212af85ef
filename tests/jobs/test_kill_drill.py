"""Drill: a worker is killed (SIGKILL) in the middle of a 20,000-row job; the job resumes with no duplicate, no gap."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.jobs import processing
from notify.settings import Settings, WorkerSettings
from notify.worker import worker_resources
from tests.conftest import make_settings
from tests.factories import create_sample
from tests.jobs.helpers import auth, get_job
from tests.servers import Servers

ROWS = 20_000
CHUNK = 200


def _worker_env(servers: Servers) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
    env.update(
        DATABASE_URL=servers.database_url,
        REDIS_URL=servers.redis_url,
        AWS_ENDPOINT_URL=servers.aws_url,
        AWS_REGION="eu-west-2",
        NOTIFY_AWS__ACCESS_KEY_ID="testing",
        NOTIFY_AWS__SECRET_ACCESS_KEY="testing",
        NOTIFY_WORKER__JOB_CHUNK_SIZE=str(CHUNK),
        NOTIFY_LOG_LEVEL="WARNING",
    )
    return env


async def _rows_saved(sessionmaker: async_sessionmaker[AsyncSession], job_id: str) -> int:
    async with sessionmaker() as session:
        value = await session.scalar(text("SELECT rows_saved FROM jobs WHERE id = :id"), {"id": uuid.UUID(job_id)})
    return int(value or 0)


@pytest.mark.drill
@pytest.mark.timeout(300)
async def test_job_killed_mid_way_resumes_without_duplicates_or_gaps(
    servers: Servers,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    tmp_path: Path,
) -> None:
    sample = await create_sample(sessionmaker, settings, key_type="test")
    csv_text = "email address,name,code\n" + "".join(f"user{i}@example.com,U{i},{i}\n" for i in range(ROWS))
    body = orjson.dumps({"name": "drill.csv", "template_id": str(sample.email_template_id), "csv": csv_text})
    response = await client.post(
        "/v2/notifications/bulk", headers={**auth(sample.key), "Content-Type": "application/json"}, content=body
    )
    assert response.status_code == 201, response.text
    job_id = response.json()["data"]["id"]

    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "notify.cli",
        "worker",
        cwd=tmp_path,
        env=_worker_env(servers),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while (saved_at_kill := await _rows_saved(sessionmaker, job_id)) < ROWS // 10:
            assert worker.returncode is None, "the worker exited on its own"
            assert loop.time() < deadline, "the worker never started the job"
            await asyncio.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        await asyncio.wait_for(worker.wait(), timeout=30)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    assert saved_at_kill < ROWS, "the job finished before the kill: the drill proved nothing"
    job = await get_job(sessionmaker, job_id)
    assert job.status == "in progress"

    resumed = make_settings(servers, worker=WorkerSettings(batch_wait_ms=0, job_chunk_size=CHUNK, job_stall_after_s=0))
    from arq import create_pool

    from notify.worker import arq_redis_settings

    queue = await create_pool(arq_redis_settings(resumed))
    try:
        async with worker_resources(resumed, queue) as app:
            assert await processing.resume_stalled(app) == 1
            # What the enqueued process_job does, run here without the 20,000 fake deliveries behind it.
            assert await processing.process(app, uuid.UUID(job_id)) == ROWS - job.rows_saved
    finally:
        await queue.aclose()

    async with sessionmaker() as session:
        result = await session.execute(
            text("SELECT id, job_row_number FROM notifications WHERE job_id = :id"), {"id": uuid.UUID(job_id)}
        )
        pairs = [(row[0], row[1]) for row in result]
    assert len(pairs) == ROWS, "one notification per row: no duplicate"
    assert sorted(number for _, number in pairs) == list(range(ROWS)), "every row: no gap"
    assert all(nid == uuid.uuid5(uuid.UUID(job_id), str(number)) for nid, number in pairs)
    finished = await get_job(sessionmaker, job_id)
    assert (finished.status, finished.rows_saved) == ("finished", ROWS)
