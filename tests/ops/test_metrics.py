"""Prometheus metrics on the API and the worker (DESIGN §8)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify import metrics
from notify.context import WorkerContext
from notify.delivery.exceptions import PermanentProviderError, TransientProviderError
from notify.delivery.service import Outcome
from notify.embedded import free_port
from notify.ops import exporter
from notify.settings import Settings, WorkerSettings
from notify.worker import build_worker
from tests.conftest import make_settings
from tests.factories import Sample, create_sample
from tests.servers import Servers
from tests.test_walking_skeleton import _verify_sender, run_worker


def sample_value(text: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def post_email(client: AsyncClient, sample: Sample) -> dict[str, Any]:
    response = await client.post(
        "/v2/notifications/email",
        json={
            "email_address": "ada@example.com",
            "template_id": str(sample.email_template_id),
            "personalisation": {"name": "Ada", "code": "1"},
        },
        headers={"Authorization": f"ApiKey-v1 {sample.key}"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_api_metrics_count_requests_accepted_notifications_and_inbox_depth(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    created = {"method": "POST", "route": "/v2/notifications/email", "status": "201"}
    before_requests = value("notify_http_requests_total", **created)
    before_accepted = value("notify_notifications_accepted_total", notification_type="email", lane="normal")
    await post_email(client, sample)
    await post_email(client, sample)
    await client.get("/v2/notifications/00000000-0000-0000-0000-000000000000")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert sample_value(text, "notify_http_requests_total", created) == before_requests + 2
    assert (
        sample_value(text, "notify_notifications_accepted_total", {"notification_type": "email", "lane": "normal"})
        == before_accepted + 2
    )
    assert sample_value(text, "notify_inbox_depth", {"notification_type": "email", "lane": "normal"}) == 2
    assert sample_value(text, "notify_inbox_in_flight", {"notification_type": "email", "lane": "normal"}) == 0
    assert sample_value(text, "notify_dead_letters", {"notification_type": "sms", "lane": "bulk"}) == 0
    # Routes are labelled by template, never by raw path (ids would explode the label set).
    assert "00000000-0000-0000-0000-000000000000" not in text
    assert sample_value(text, "notify_http_requests_total", {"route": "/v2/notifications/{notification_id}"})


async def test_worker_metrics_record_save_and_delivery(
    client: AsyncClient,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    worker_ctx: WorkerContext,
) -> None:
    sample = await create_sample(sessionmaker, settings)
    saves = value("notify_save_batch_duration_seconds_count", notification_type="email")
    saved = value("notify_notifications_saved_total", notification_type="email")
    delivers = value("notify_deliver_batch_duration_seconds_count", notification_type="email")
    sent = value("notify_delivery_outcomes_total", notification_type="email", outcome="sent")
    latencies = value("notify_accepted_to_sent_seconds_count", notification_type="email")
    inbox_stage = value("notify_accepted_to_saved_seconds_count", notification_type="email")
    waiting_stage = value("notify_saved_to_sent_seconds_count", notification_type="email")
    await _verify_sender(worker_ctx)
    await post_email(client, sample)
    await post_email(client, sample)
    await run_worker(worker_ctx, settings)

    assert value("notify_save_batch_duration_seconds_count", notification_type="email") == saves + 1
    assert value("notify_notifications_saved_total", notification_type="email") == saved + 2
    assert value("notify_deliver_batch_duration_seconds_count", notification_type="email") >= delivers + 1
    assert value("notify_delivery_outcomes_total", notification_type="email", outcome="sent") == sent + 2
    assert value("notify_accepted_to_sent_seconds_count", notification_type="email") == latencies + 2
    assert value("notify_accepted_to_saved_seconds_count", notification_type="email") == inbox_stage + 2
    assert value("notify_saved_to_sent_seconds_count", notification_type="email") == waiting_stage + 2
    text = (await client.get("/metrics")).text
    assert sample_value(text, "notify_inbox_depth", {"notification_type": "email", "lane": "normal"}) == 0


async def test_worker_serves_metrics_on_its_port_when_configured(
    servers: Servers, settings: Settings, queue: ArqRedis, redis: Redis
) -> None:
    port = free_port()
    configured = make_settings(servers, worker=WorkerSettings(metrics_port=port))
    await redis.xadd("dead:sms:priority", {"n": b"{}", "reason": b"test"})
    worker = build_worker(configured, burst=True, with_cron=False)
    ctx: dict[str, Any] = {"redis": queue}
    assert worker.on_startup is not None
    assert worker.on_shutdown is not None
    await worker.on_startup(ctx)
    try:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        await worker.on_shutdown(ctx)
    assert response.status_code == 200
    assert sample_value(response.text, "notify_dead_letters", {"notification_type": "sms", "lane": "priority"}) == 1
    assert "notify_deliver_batch_duration_seconds" in response.text


async def test_exporter_still_answers_when_redis_is_down(settings: Settings) -> None:
    port = free_port()
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        async with exporter.serve("127.0.0.1", port, dead), httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        await dead.aclose()
    assert response.status_code == 200
    assert "notify_http_requests" in response.text


def test_provider_error_codes_are_bounded_labels() -> None:
    assert metrics.provider_error_code("Throttling: Maximum sending rate exceeded.", "X") == "Throttling"
    assert metrics.provider_error_code("MessageRejected: Email address is not verified.", "X") == "MessageRejected"
    assert metrics.provider_error_code("Timed out after 15.0 s", "TransientProviderError") == "TransientProviderError"
    assert metrics.provider_error_code("some text with spaces: then more", "Fallback") == "Fallback"


def test_delivery_outcomes_count_provider_errors_by_code() -> None:
    now = datetime.now(UTC)
    rows = [
        SimpleNamespace(id=uuid.uuid4(), created_at=now - timedelta(seconds=3), queued_at=now - timedelta(seconds=1))
        for _ in range(3)
    ]
    results: list[object] = [
        "ses-message-id",
        PermanentProviderError("MessageRejected: Email address is not verified."),
        TransientProviderError("Throttling: Maximum sending rate exceeded."),
    ]
    outcome = Outcome(
        sent=[(rows[0].id, "ses-message-id", now, "ses", "sending")],
        failed=[(rows[1].id, "MessageRejected: Email address is not verified.")],
        retry=[(rows[2].id, "Throttling", now)],
    )
    rejected = value("notify_provider_errors_total", notification_type="email", code="MessageRejected")
    throttled = value("notify_provider_errors_total", notification_type="email", code="Throttling")
    retries = value("notify_delivery_outcomes_total", notification_type="email", outcome="retry")
    slow = value("notify_accepted_to_sent_seconds_bucket", notification_type="email", le="2.5")
    total = value("notify_accepted_to_sent_seconds_count", notification_type="email")
    waited = value("notify_saved_to_sent_seconds_sum", notification_type="email")

    metrics.observe_delivery("email", rows, results, outcome, time.perf_counter())

    assert value("notify_provider_errors_total", notification_type="email", code="MessageRejected") == rejected + 1
    assert value("notify_provider_errors_total", notification_type="email", code="Throttling") == throttled + 1
    assert value("notify_delivery_outcomes_total", notification_type="email", outcome="retry") == retries + 1
    # Accepted 3 s before it was sent: counted, and above the 2.5 s bucket.
    assert value("notify_accepted_to_sent_seconds_count", notification_type="email") == total + 1
    assert value("notify_accepted_to_sent_seconds_bucket", notification_type="email", le="2.5") == slow
    # Saved (or put back) 1 s before it was sent: saved → sent is that second.
    assert value("notify_saved_to_sent_seconds_sum", notification_type="email") - waited == pytest.approx(1.0)


async def test_request_metrics_keep_counting_when_their_label_cache_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """The middleware keeps each label set's children; a full cache is emptied, and nothing goes uncounted."""

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        status = int(scope["path"].strip("/"))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    monkeypatch.setattr(metrics.RequestMetricsMiddleware, "MAX_CHILDREN", 2)
    method = f"CACHE{uuid.uuid4().hex[:8].upper()}"  # a label set no other test touches
    statuses = ("200", "404", "503")
    transport = httpx.ASGITransport(app=metrics.RequestMetricsMiddleware(answer))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        for _ in range(2):
            for status in statuses:
                await client.request(method, f"/{status}")

    for status in statuses:
        assert value("notify_http_requests_total", method=method, route="<unmatched>", status=status) == 2
    assert value("notify_http_request_duration_seconds_count", method=method, route="<unmatched>") == 6
