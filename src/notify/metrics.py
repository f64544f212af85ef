"""Prometheus metrics of the API and the worker (DESIGN §8).

Each process keeps its own registry (`REGISTRY`). `notify api --workers N` runs N processes, so one scrape of
`/metrics` answers for the one process that served it: counters and histograms are per process, and Prometheus
sums them when every process is scraped. Run one uvicorn process per port (or per container) behind the load
balancer so each can be scraped on its own; or set `PROMETHEUS_MULTIPROC_DIR` (an empty directory, wiped at each
deploy) before start-up, and `/metrics` then aggregates every process through prometheus-client's multiprocess
mode. Lane gauges (inbox depth, in flight, dead letters) read Redis at scrape time, so every process reports the
same global values: aggregate them with `max`, never `sum`.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_END_TO_END_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)

HTTP_REQUESTS = Counter(
    "notify_http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "notify_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
ACCEPTED = Counter(
    "notify_notifications_accepted",
    "Notifications accepted into an inbox stream.",
    ["notification_type", "lane"],
    registry=REGISTRY,
)
INBOX_DEPTH = Gauge(
    "notify_inbox_depth",
    "Entries in the lane's inbox stream (new + in flight).",
    ["notification_type", "lane"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
IN_FLIGHT = Gauge(
    "notify_inbox_in_flight",
    "Entries read but not yet saved (pending in the consumer group).",
    ["notification_type", "lane"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
DEAD_LETTERS = Gauge(
    "notify_dead_letters",
    "Entries in the lane's dead-letter stream.",
    ["notification_type", "lane"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
SAVE_LATENCY = Histogram(
    "notify_save_batch_duration_seconds",
    "Time to save one inbox batch to PostgreSQL and acknowledge it.",
    ["notification_type"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
SAVED = Counter(
    "notify_notifications_saved", "Notifications saved to PostgreSQL.", ["notification_type"], registry=REGISTRY
)
DELIVER_LATENCY = Histogram(
    "notify_deliver_batch_duration_seconds",
    "Time to claim, send and record one delivery batch.",
    ["notification_type"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
DELIVERY_OUTCOMES = Counter(
    "notify_delivery_outcomes",
    "Delivery attempts by outcome (sent, failed, retry).",
    ["notification_type", "outcome"],
    registry=REGISTRY,
)
PROVIDER_ERRORS = Counter(
    "notify_provider_errors",
    "Errors returned by SES/SNS, by provider error code.",
    ["notification_type", "code"],
    registry=REGISTRY,
)
ACCEPTED_TO_SENT = Histogram(
    "notify_accepted_to_sent_seconds",
    "From acceptance by the API to the provider's answer.",
    ["notification_type"],
    buckets=_END_TO_END_BUCKETS,
    registry=REGISTRY,
)
ACCEPTED_TO_SAVED = Histogram(
    "notify_accepted_to_saved_seconds",
    "From acceptance by the API to the row committed in PostgreSQL (the inbox stage).",
    ["notification_type"],
    buckets=_END_TO_END_BUCKETS,
    registry=REGISTRY,
)
SAVED_TO_SENT = Histogram(
    "notify_saved_to_sent_seconds",
    "From the row waiting in PostgreSQL (saved, or put back for a retry) to the provider's answer.",
    ["notification_type"],
    buckets=_END_TO_END_BUCKETS,
    registry=REGISTRY,
)
SENT_TO_DELIVERED = Histogram(
    "notify_sent_to_delivered_seconds",
    "From the provider's answer to the delivery receipt.",
    ["notification_type"],
    buckets=_END_TO_END_BUCKETS,
    registry=REGISTRY,
)
ACCEPTED_TO_DELIVERED = Histogram(
    "notify_accepted_to_delivered_seconds",
    "From acceptance by the API to the delivery receipt.",
    ["notification_type"],
    buckets=_END_TO_END_BUCKETS,
    registry=REGISTRY,
)
RECEIPTS = Counter(
    "notify_receipts", "Provider receipts applied, by outcome.", ["notification_type", "outcome"], registry=REGISTRY
)

RECOVERY_ACTIONS = Counter(
    "notify_recovery_actions",
    "Recovery actions taken: entries saved again, dead-lettered, leases released, rows replayed or timed out.",
    ["action"],
    registry=REGISTRY,
)

_CODE = re.compile(r"^[A-Za-z][\w.]{0,63}$")


def provider_error_code(message: str, fallback: str) -> str:
    """Return a bounded label for a provider error: the AWS code before `:` in its message, else `fallback`."""
    head = message.split(":", 1)[0].strip()
    return head if ":" in message and _CODE.match(head) else fallback


def _elapsed_s(since: datetime, until: datetime) -> float:
    """Seconds from `since` to `until`, never negative (clocks of two hosts can disagree a little)."""
    return max((until - since).total_seconds(), 0.0)


def observe_save(notification_type: str, started: float, accepted_at: Sequence[datetime]) -> None:
    """Record one saved inbox batch that began at `started` (a `time.perf_counter()` value), and accepted → saved."""
    SAVE_LATENCY.labels(notification_type).observe(time.perf_counter() - started)
    SAVED.labels(notification_type).inc(len(accepted_at))
    histogram = ACCEPTED_TO_SAVED.labels(notification_type)
    now = datetime.now(UTC)
    for accepted in accepted_at:
        histogram.observe(_elapsed_s(accepted, now))


class _Row(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def queued_at(self) -> datetime: ...


class _Outcome(Protocol):
    sent: list[tuple[uuid.UUID, str, datetime, str, str]]
    failed: list[tuple[uuid.UUID, str]]
    retry: list[tuple[uuid.UUID, str, datetime]]


def observe_delivery(
    notification_type: str, rows: Sequence[_Row], results: Sequence[object], outcome: _Outcome, started: float
) -> None:
    """Record one delivery batch: its latency, outcomes, provider errors by code, accepted → sent, saved → sent."""
    DELIVER_LATENCY.labels(notification_type).observe(time.perf_counter() - started)
    for name, items in (("sent", outcome.sent), ("failed", outcome.failed), ("retry", outcome.retry)):
        if items:
            DELIVERY_OUTCOMES.labels(notification_type, name).inc(len(items))
    for result in results:
        if isinstance(result, Exception):
            code = provider_error_code(str(getattr(result, "message", result)), type(result).__name__)
            PROVIDER_ERRORS.labels(notification_type, code).inc()
    if outcome.sent:
        by_id = {row.id: row for row in rows}
        accepted_to_sent = ACCEPTED_TO_SENT.labels(notification_type)
        saved_to_sent = SAVED_TO_SENT.labels(notification_type)
        for notification_id, _, sent_at, _, _ in outcome.sent:
            row = by_id.get(notification_id)
            if row is not None:
                accepted_to_sent.observe(_elapsed_s(row.created_at, sent_at))
                saved_to_sent.observe(_elapsed_s(row.queued_at, sent_at))


def observe_delivered(notification_type: str, created_at: datetime, sent_at: datetime | None = None) -> None:
    """Record accepted → delivered and sent → delivered for one delivery receipt (for the receipt pollers)."""
    now = datetime.now(UTC)
    ACCEPTED_TO_DELIVERED.labels(notification_type).observe(_elapsed_s(created_at, now))
    if sent_at is not None:
        SENT_TO_DELIVERED.labels(notification_type).observe(_elapsed_s(sent_at, now))


def count_recovery(action: str, count: int = 1) -> None:
    """Count `count` recovery actions of one kind (DESIGN §2.3)."""
    if count:
        RECOVERY_ACTIONS.labels(action).inc(count)


def render() -> bytes:
    """Render this process's metrics (every process's, in multiprocess mode) in the text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


CONTENT_TYPE = CONTENT_TYPE_LATEST


def route_label(scope: Scope) -> str:
    """Return the template of the route that served `scope` (`<unmatched>` for a 404 outside every route)."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    endpoint = scope.get("endpoint")
    if endpoint is not None:  # Plain Starlette routes and mounts (openapi.json, docs assets) set no "route".
        for route in getattr(scope.get("app"), "routes", ()):
            if getattr(route, "endpoint", None) is endpoint or getattr(route, "app", None) is endpoint:
                return str(route.path)
    return "<unmatched>"


class RequestMetricsMiddleware:
    """Count requests and time them by route template (never the raw path: ids would explode the label set).

    Each (method, route, status) keeps its two labelled children: `labels()` looks them up under a lock and
    rebuilds the label tuple every time (5.2 µs a request, against 2.3 µs with the children kept).
    """

    MAX_CHILDREN = 1024  # the method is the client's to choose: forget them all rather than grow without end

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request and record its route, status and latency."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            key = (scope.get("method", ""), route_label(scope), status)
            children = self._children.get(key)
            if children is None:
                if len(self._children) >= self.MAX_CHILDREN:
                    self._children.clear()
                method, route, _ = key
                children = HTTP_REQUESTS.labels(method, route, str(status)), HTTP_LATENCY.labels(method, route)
                self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - start)
