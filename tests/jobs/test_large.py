"""A full-size job: 50,000 rows accepted in one POST without holding the file several times over."""

from __future__ import annotations

import time
import tracemalloc

import orjson
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.settings import Settings
from tests.factories import create_sample
from tests.jobs.helpers import auth, count_rows

ROWS = 50_000


async def test_fifty_thousand_row_csv_is_stored_in_one_request(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], client: AsyncClient
) -> None:
    sample = await create_sample(sessionmaker, settings)
    csv_text = "email address,name,code\n" + "".join(f"user{i}@example.com,User {i},{i}\n" for i in range(ROWS))
    body = orjson.dumps({"name": "big.csv", "template_id": str(sample.email_template_id), "csv": csv_text})
    headers = {**auth(sample.key), "Content-Type": "application/json"}
    tracemalloc.start()
    started = time.perf_counter()
    response = await client.post("/v2/notifications/bulk", headers=headers, content=body)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert response.status_code == 201, response.text[:500]
    assert response.json()["data"]["notification_count"] == ROWS
    assert await count_rows(sessionmaker, "job_rows") == ROWS
    # The API's raw body and the parsed field hold the file once each (and the ASGI transport's copy of the body);
    # rows are streamed from the field into the database in chunks, never listed.
    assert peak < 4 * len(csv_text), f"peak {peak / 1e6:.1f} MB for a {len(csv_text) / 1e6:.1f} MB file"
    assert elapsed < 60
