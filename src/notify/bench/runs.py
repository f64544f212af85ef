"""The benchmarks of DESIGN §10: each measures notify and a bare reference in the same run."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson
import psutil

from notify import aws
from notify.bench.load import LoadResult, LoadSpec, generator_name, run_load
from notify.bench.stack import START_TIMEOUT_S, BenchStack, Managed, Seed
from notify.delivery.pause import pause_key
from notify.settings import AwsSettings, Settings
from notify.testing.receipts import delivery_event, sns_envelope

EMAIL_PATH = "/v2/notifications/email"
INGEST_ATTEMPTS = 3  # a run whose connections all went to one API process is measured again, at most twice


@dataclass(slots=True)
class Figure:
    """One line of the result table."""

    bench: str
    figure: str
    value: float | None
    unit: str = ""
    reference: float | None = None
    reference_label: str = ""
    target: str = ""
    ratio_target: float | None = None

    @property
    def ratio(self) -> float | None:
        """Return value / reference when both exist."""
        if self.value is None or not self.reference:
            return None
        return self.value / self.reference


@dataclass(slots=True)
class Report:
    """Everything a bench run prints."""

    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Options:
    """Knobs shared by every benchmark."""

    connections: int = 64
    duration_s: float = 10.0
    size: int | None = None
    rate_per_s: float = 1500.0
    use_wrk: bool = True


class CpuSource(Protocol):
    """Anything whose CPU seconds so far can be read (a Managed group, a server process)."""

    def cpu_s(self) -> float:
        """Return CPU seconds used so far."""
        ...


class CpuMeter:
    """CPU seconds of process groups and of the whole box (incl. steal) between start() and stop()."""

    def __init__(self, groups: Mapping[str, Sequence[CpuSource]]) -> None:
        self.groups = groups
        self._start: dict[str, float] = {}
        self._box_start = psutil.cpu_times()
        self.used_s: dict[str, float] = {}
        self.box_busy_pct = 0.0
        self.steal_pct = 0.0

    def start(self) -> None:
        """Take the first sample."""
        self._start = {name: sum(m.cpu_s() for m in group) for name, group in self.groups.items()}
        self._box_start = psutil.cpu_times()

    def stop(self) -> None:
        """Take the second sample."""
        self.used_s = {name: sum(m.cpu_s() for m in group) - self._start[name] for name, group in self.groups.items()}
        end = psutil.cpu_times()
        deltas = {name: getattr(end, name) - getattr(self._box_start, name) for name in end._fields}
        total = sum(deltas.values()) or 1.0
        idle = deltas.get("idle", 0.0) + deltas.get("iowait", 0.0)
        self.box_busy_pct = 100 * (total - idle) / total
        self.steal_pct = 100 * deltas.get("steal", 0.0) / total

    def note(self, per: int, what: str) -> str:
        """Describe CPU per item and the box's state."""
        parts = [f"{name} {1000 * used / per:.2f} ms" for name, used in self.used_s.items() if per]
        return f"CPU per {what}: {', '.join(parts)}; box busy {self.box_busy_pct:.0f} %, steal {self.steal_pct:.0f} %"


def _pipeline_meter(stack: BenchStack) -> CpuMeter:
    """Meter the API, the workers and the servers they use (PostgreSQL, Redis, the fake AWS)."""
    return CpuMeter({"API": [stack.api] if stack.api else [], "workers": stack.workers, **stack.server_processes()})


def email_body(seed: Seed, reference: str) -> bytes:
    """Return the JSON every benchmark POSTs."""
    return orjson.dumps(
        {
            "email_address": "bench.recipient@example.com",
            "template_id": str(seed.email_template_id),
            "personalisation": {"name": "Ada", "code": "123456"},
            "reference": reference,
        }
    )


def _rss_note(label: str, groups: list[Managed]) -> str:
    peaks = [peak for managed in groups for peak in managed.peak_rss_mib()]
    if not peaks:
        return f"{label} peak RSS: n/a"
    return f"{label} peak RSS (VmHWM): max {max(peaks):.0f} MiB per process, {sum(peaks):.0f} MiB over {len(peaks)}"


# -- ingest ----------------------------------------------------------------------------------------


async def bench_ingest(stack: BenchStack, seed: Seed, options: Options, report: Report) -> None:
    """POST /v2/notifications/email with real credentials (no worker running) beside the bare endpoint."""
    await stack.stop_workers()
    await stack.start_api()
    await stack.start_bare()
    body = email_body(seed, "bench-ingest")
    warm = options.duration_s if options.duration_s < 2 else 2.0
    results: dict[str, LoadResult] = {}
    meters: dict[str, CpuMeter] = {}
    spreads: dict[str, str] = {}
    assert stack.api is not None
    assert stack.bare is not None
    targets = {"notify": (stack.api_url, seed.key, stack.api), "bare": (stack.bare_url, None, stack.bare)}
    for name, (base, key, group) in targets.items():
        # Warm caches and pools by count first (cold first requests can take seconds), then by time.
        spec = LoadSpec(base + EMAIL_PATH, body, key, min(32, options.connections), count=300)
        await run_load(spec, use_wrk=False, workdir=stack.workdir)
        spec = LoadSpec(base + EMAIL_PATH, body, key, options.connections, duration_s=warm)
        await run_load(spec, use_wrk=options.use_wrk, workdir=stack.workdir)
        spec = LoadSpec(base + EMAIL_PATH, body, key, options.connections, duration_s=options.duration_s)
        discarded: list[str] = []
        for _ in range(INGEST_ATTEMPTS):
            meter = CpuMeter({name: [group]})
            meter.start()
            results[name], counts = await _load_and_spread(stack, spec, options, group)
            meter.stop()
            meters[name] = meter
            if not _one_sided(counts):
                break
            # All connections on one process (hashing made it so, or a shared socket): that run measured one core,
            # not the endpoint. It is named in the notes and measured again.
            discarded.append(f"{results[name].rate:,.0f}/s with {_spread_text(counts)}")
        spreads[name] = _spread_text(counts) + "".join(f"; measured again after {run}" for run in discarded)
    stack.check_alive()
    ours, bare = results["notify"], results["bare"]
    report.figures += [
        Figure("ingest", "accepted/s", ours.rate, "/s", bare.rate, "bare Starlette+XADD", "≥ 4,000/s", 0.55),
        Figure("ingest", "p50 latency", ours.p50_ms, "ms", bare.p50_ms, "bare", ""),
        Figure("ingest", "p99 latency", ours.p99_ms, "ms", bare.p99_ms, "bare", "≤ 50 ms"),
    ]
    report.notes += [
        f"ingest: {options.connections} connections, {options.duration_s:g} s after a {warm:g} s warm-up, no worker "
        f"running; notify {ours.ok} ok / {ours.errors} errors, bare {bare.ok} ok / {bare.errors} errors",
        "ingest " + meters["notify"].note(max(ours.completed, 1), "request (notify API)"),
        "ingest " + meters["bare"].note(max(bare.completed, 1), "request (bare)"),
        f"ingest connections per serving process: notify {spreads['notify']}, bare {spreads['bare']}",
        _rss_note("API", [stack.api] if stack.api else []),
    ]
    await stack.stop_bare()
    await stack.clear_inbox()


# -- end to end ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drained:
    """What the database says about one reference's notifications."""

    total: int
    sent: int
    first_created: datetime | None
    last_sent: datetime | None
    p50_ms: float | None
    p99_ms: float | None
    timed_out: bool


async def _load_and_spread(
    stack: BenchStack, spec: LoadSpec, options: Options, server: Managed
) -> tuple[LoadResult, list[int] | None]:
    """Run the load and, one second in, count the connections each of the server's processes holds."""
    load = asyncio.create_task(run_load(spec, use_wrk=options.use_wrk, workdir=stack.workdir))
    await asyncio.wait({load}, timeout=1.0)
    counts = None if load.done() else server.connections_per_process(urlsplit(spec.url).port or 80)
    return await load, counts


def _one_sided(counts: list[int] | None) -> bool:
    """Whether every connection went to one of several processes."""
    return counts is not None and len(counts) > 1 and counts[-1] == 0


def _spread_text(counts: list[int] | None) -> str:
    if counts is None:
        return "not sampled (the load ended within a second)"
    text = "/".join(str(count) for count in counts)
    return text + (" (all on one process: about one core's worth)" if _one_sided(counts) else "")


async def _wait_drained(stack: BenchStack, reference: str, posted: int, sent_before: int, timeout_s: float) -> Drained:
    """Wait until the inbox is empty and every row with `reference` has been sent (or the timeout passes).

    While sends are still short, it polls the fake's SendEmail counter (`sent_before` is its value before the
    load): the query over the database's rows costs PostgreSQL tens of milliseconds at this size, CPU that the
    pipeline being measured would otherwise lose several times a second.
    """
    deadline = time.monotonic() + timeout_s
    sql = (
        "SELECT count(*), count(sent_at), min(created_at), max(sent_at), "
        "1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)), "
        "1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)) "
        "FROM notifications WHERE client_reference = :reference"
    )
    while True:
        stack.check_alive()
        timed_out = time.monotonic() > deadline
        if not timed_out and await stack.fake_sent_emails() - sent_before < posted:
            await asyncio.sleep(0.1)
            continue
        total, sent, first, last, p50, p99 = await stack.row(sql, reference=reference)
        assert isinstance(total, int)
        assert isinstance(sent, int)
        done = total >= posted and sent == total and await stack.inbox_length() == 0
        if done or timed_out:
            return Drained(
                total,
                sent,
                first if isinstance(first, datetime) else None,
                last if isinstance(last, datetime) else None,
                float(p50) if isinstance(p50, float) else None,
                float(p99) if isinstance(p99, float) else None,
                timed_out=not done,
            )
        await asyncio.sleep(0.2)


async def _warm_pipeline(stack: BenchStack, seed: Seed, options: Options) -> None:
    """Post a few hundred and wait until they are sent, so workers, caches and pools are up."""
    reference = f"bench-warm-{uuid.uuid4().hex[:8]}"
    count = min(300, options.size or 300)
    spec = LoadSpec(stack.api_url + EMAIL_PATH, email_body(seed, reference), seed.key, 16, count=count)
    before = await stack.fake_sent_emails()
    result = await run_load(spec, use_wrk=False, workdir=stack.workdir)
    drained = await _wait_drained(stack, reference, result.ok, before, timeout_s=90)
    if drained.timed_out:
        raise RuntimeError(f"the pipeline did not send the warm-up notifications ({drained.sent}/{result.ok} sent)")


async def ses_loop(stack: BenchStack, count: int, concurrency: int = 100) -> tuple[float, float]:
    """Send `count` emails with one aiobotocore sesv2 client in this process; return (sends/s, CPU ms/send)."""
    settings = stack.settings().aws.model_copy(update={"max_pool_connections": concurrency})
    session = aws.create_session(settings)
    request = {
        "FromEmailAddress": "bench@notify.example.com",
        "Destination": {"ToAddresses": ["bench.recipient@example.com"]},
        "Content": {
            "Simple": {
                "Subject": {"Data": "Hello Ada"},
                "Body": {"Text": {"Data": "Hi Ada, your code is 123456."}, "Html": {"Data": "<p>Hi Ada</p>"}},
            }
        },
    }
    async with session.client("sesv2", **aws.client_kwargs(settings)) as ses:
        left = [min(200, count)]

        async def sender() -> None:
            while left[0] > 0:
                left[0] -= 1
                await ses.send_email(**request)

        await asyncio.gather(*(sender() for _ in range(concurrency)))  # warm-up: connections, endpoint rules
        left[0] = count
        cpu_start, start = time.process_time(), time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return count / elapsed, 1000 * cpu / count


async def bench_e2e(stack: BenchStack, seed: Seed, options: Options, report: Report) -> None:
    """Post `size` emails as fast as possible while the workers send them; rate = n / (first POST → last send)."""
    size = options.size or 30_000
    await stack.clear_inbox()
    await stack.start_api()
    stack.start_workers()
    await _warm_pipeline(stack, seed, options)
    loop_count = max(200, min(size, 10_000))
    # The reference runs before and after the pipeline's run, and the figure is their mean: the box's speed drifts
    # by ±10 % within minutes, and one reference taken only before the run turned that drift into the ratio.
    loop_before = await ses_loop(stack, loop_count)

    reference = f"bench-e2e-{uuid.uuid4().hex[:8]}"
    before = await stack.fake_sent_emails()
    meter = _pipeline_meter(stack)
    meter.start()
    spec = LoadSpec(stack.api_url + EMAIL_PATH, email_body(seed, reference), seed.key, options.connections, count=size)
    assert stack.api is not None
    posted, counts = await _load_and_spread(stack, spec, options, stack.api)
    drained = await _wait_drained(stack, reference, posted.ok, before, timeout_s=max(120.0, size / 50))
    meter.stop()
    sent_by_fake = await stack.fake_sent_emails() - before
    loop_after = await ses_loop(stack, loop_count)
    loop_rate = (loop_before[0] + loop_after[0]) / 2
    loop_cpu_ms = (loop_before[1] + loop_after[1]) / 2
    rate = None
    if drained.first_created and drained.last_sent and drained.sent:
        rate = drained.sent / max((drained.last_sent - drained.first_created).total_seconds(), 1e-3)
    report.figures += [
        Figure("e2e", "notifications/s", rate, "/s", loop_rate, "aiobotocore loop, 1 proc", "≥ 2,000/s", 2.0),
        Figure("e2e", "API ingest during run", posted.rate, "/s", None, "", ""),
    ]
    report.notes += [
        f"e2e: {drained.sent} of {drained.total} rows sent (generator counted {posted.ok} ok, {posted.errors} errors;"
        f" the fake counted {sent_by_fake} SendEmail), {options.connections} connections, SES latency "
        f"{stack.ses_latency_ms:g} ms, {stack.worker_procs} worker process(es)"
        + ("; TIMED OUT before every row was sent" if drained.timed_out else ""),
        f"e2e reference: {loop_count} sends, concurrency 100, pool 100, before and after the run: "
        f"{loop_before[0]:.0f}/s and {loop_after[0]:.0f}/s, mean {loop_rate:.0f}/s, {loop_cpu_ms:.2f} ms CPU per send",
        "e2e " + meter.note(max(drained.sent, 1), "notification"),
        f"e2e connections per API process: {_spread_text(counts)}",
        _rss_note("API", [stack.api] if stack.api else []),
        _rss_note("worker", stack.workers),
    ]


async def bench_latency(stack: BenchStack, seed: Seed, options: Options, report: Report) -> None:
    """Offer a steady rate for `duration` and report accepted → sent percentiles from the database."""
    await stack.clear_inbox()
    await stack.start_api()
    stack.start_workers()
    await _warm_pipeline(stack, seed, options)
    reference = f"bench-lat-{uuid.uuid4().hex[:8]}"
    spec = LoadSpec(
        stack.api_url + EMAIL_PATH,
        email_body(seed, reference),
        seed.key,
        options.connections,
        duration_s=options.duration_s,
        rate_per_s=options.rate_per_s,
    )
    before = await stack.fake_sent_emails()
    # At a steady 1,500/s the batches are small: per-batch costs weigh more here than in e2e.
    meter = _pipeline_meter(stack)
    meter.start()
    posted = await run_load(spec, use_wrk=options.use_wrk, workdir=stack.workdir)
    drained = await _wait_drained(stack, reference, posted.ok, before, timeout_s=max(60.0, options.duration_s * 5))
    meter.stop()
    report.figures += [
        Figure("latency", "offered → accepted", posted.rate, "/s", options.rate_per_s, "offered rate", "1,500/s"),
        Figure("latency", "accepted → sent p50", drained.p50_ms, "ms", None, "", ""),
        Figure("latency", "accepted → sent p99", drained.p99_ms, "ms", None, "", "≤ 250 ms"),
        Figure("latency", "API p99 at this rate", posted.p99_ms, "ms", None, "", ""),
    ]
    report.notes += [
        f"latency: {options.duration_s:g} s at {options.rate_per_s:g}/s offered over {options.connections} "
        f"connections; {drained.sent}/{drained.total} sent" + ("; TIMED OUT" if drained.timed_out else ""),
        await _stages_note(stack, reference),
        "latency " + meter.note(max(drained.sent, 1), "notification"),
        _rss_note("API", [stack.api] if stack.api else []),
        _rss_note("worker", stack.workers),
    ]


# sending_started_at is when the delivery job claimed the row: the split between the two halves of accepted → sent.
_STAGES_SQL = """
SELECT
  percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY 1000 * extract(epoch FROM sending_started_at - created_at)),
  percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY 1000 * extract(epoch FROM sent_at - sending_started_at))
FROM notifications WHERE client_reference = :reference AND sent_at IS NOT NULL
"""


async def _stages_note(stack: BenchStack, reference: str) -> str:
    """Split accepted → sent at the claim: accepted → claimed (saved, enqueued, polled) and claimed → SES answered."""
    queued, sending = await stack.row(_STAGES_SQL, reference=reference)
    if not isinstance(queued, list) or not isinstance(sending, list):
        return "latency stages: no sent rows"
    return (
        f"latency stages, p50 / p99: accepted → claimed {queued[0]:.0f} / {queued[1]:.0f} ms, "
        f"claimed → SES answered {sending[0]:.0f} / {sending[1]:.0f} ms"
    )


# -- bulk ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BulkRun:
    """One bulk job's figures: rows saved, POST → last row saved, the POST alone, and the CPU it took."""

    saved: int
    rows_in_db: int
    elapsed_s: float
    posted_s: float
    meter: CpuMeter
    started: float  # perf_counter at the POST


async def _bulk_job(stack: BenchStack, seed: Seed, size: int, name: str, timeout_s: float) -> BulkRun | str:
    """POST one job of `size` rows and wait until its progress says every row is saved; an error text on failure."""
    rows: list[list[str]] = [["email address", "name", "code"]]
    rows += [[f"bulk.{i}@example.com", "Ada", str(i)] for i in range(size)]
    body = orjson.dumps({"name": name, "template_id": str(seed.email_template_id), "rows": rows})
    headers = {"Authorization": f"ApiKey-v1 {seed.key}", "Content-Type": "application/json"}
    meter = CpuMeter({"API": [stack.api] if stack.api else [], "workers": stack.workers})
    async with httpx.AsyncClient(timeout=120) as client:
        meter.start()
        start = time.perf_counter()
        response = await client.post(stack.api_url + "/v2/notifications/bulk", content=body, headers=headers)
        posted_s = time.perf_counter() - start
    if response.status_code != 201:
        return f"{response.status_code} {response.text[:300]}"
    job_id = uuid.UUID(response.json()["data"]["id"])
    saved = 0
    while time.perf_counter() < start + timeout_s:
        stack.check_alive()
        # `rows_saved` commits with each chunk's INSERT, and costs PostgreSQL less to poll than counting rows.
        progress = await stack.scalar("SELECT rows_saved FROM jobs WHERE id = :job", job=job_id)
        saved = int(progress) if isinstance(progress, int) else 0
        if saved >= size:
            break
        await asyncio.sleep(0.05)
    elapsed_s = time.perf_counter() - start
    meter.stop()
    rows_in_db = await stack.scalar("SELECT count(*) FROM notifications WHERE job_id = :job", job=job_id)
    return BulkRun(saved, int(rows_in_db) if isinstance(rows_in_db, int) else 0, elapsed_s, posted_s, meter, start)


async def _wait_sent(stack: BenchStack, timeout_s: float) -> bool:
    """Wait until no email waits to be sent (so the next measurement starts on a quiet box); False on timeout."""
    deadline = time.monotonic() + timeout_s
    sql = "SELECT count(*) FROM notifications WHERE notification_type = 'email' AND status IN ('created', 'sending')"
    while time.monotonic() < deadline:
        waiting = await stack.scalar(sql + " AND sent_at IS NULL")
        if waiting == 0:
            return True
        await asyncio.sleep(0.1)
    return False


async def bench_bulk(stack: BenchStack, seed: Seed, options: Options, report: Report) -> None:
    """POST a job of `size` rows and time it until every row is saved: while the workers send it, then paused."""
    size = options.size or 50_000
    await stack.start_api()
    stack.start_workers()
    timeout_s = max(120.0, size / 500)
    # A small job first, sent to the end, so the measured one does not pay for first requests and cold caches.
    warm_up = await _bulk_job(stack, seed, min(size, 2_000), "bench bulk warm-up", timeout_s)
    if isinstance(warm_up, str):
        report.notes.append(f"bulk: warm-up FAILED — {warm_up}")
        return
    await _wait_sent(stack, timeout_s)
    sending = await _bulk_job(stack, seed, size, "bench bulk", timeout_s)
    if isinstance(sending, str):
        report.notes.append(f"bulk: FAILED — {sending}")
        return
    all_sent = await _wait_sent(stack, timeout_s)
    sent_s = time.perf_counter() - sending.started
    # The same job again with email sending paused: what saving costs without the sends competing for the CPU.
    await stack.redis.set(pause_key("email"), "notify bench bulk: saving alone", ex=int(timeout_s))
    try:
        alone = await _bulk_job(stack, seed, size, "bench bulk (sending paused)", timeout_s)
    finally:
        await stack.redis.delete(pause_key("email"))
    report.figures.append(
        Figure("bulk", "rows saved/s", sending.saved / sending.elapsed_s, "/s", None, "", "≥ 10,000/s")
    )
    report.notes += [
        f"bulk: {sending.saved}/{size} rows saved in {sending.elapsed_s:.1f} s (POST → last row in PostgreSQL; "
        f"{sending.rows_in_db} notifications in the database) while the workers send them; the POST (check and "
        f"store every row) took {sending.posted_s:.1f} s; every row sent "
        + (f"{sent_s:.1f} s after the POST ({size / sent_s:,.0f}/s)" if all_sent else "NOT within the timeout")
        + f" (deliveries held until the save is done: {stack.settings().worker.job_send_hold_s} s at most)",
        "bulk " + sending.meter.note(max(sending.saved, 1), "row"),
    ]
    if isinstance(alone, BulkRun):
        report.figures.append(
            Figure("bulk", "rows saved/s, sending paused", alone.saved / alone.elapsed_s, "/s", None, "", "")
        )
        report.notes += [
            f"bulk, sending paused: {alone.saved}/{size} rows saved in {alone.elapsed_s:.1f} s (POST "
            f"{alone.posted_s:.1f} s); " + alone.meter.note(max(alone.saved, 1), "row"),
        ]
    else:
        report.notes.append(f"bulk, sending paused: FAILED — {alone}")
    report.notes += [_rss_note("API", [stack.api] if stack.api else []), _rss_note("worker", stack.workers)]


# -- receipts --------------------------------------------------------------------------------------


# One set-based INSERT: `size` emails as delivery leaves them (status `sending`, reference = the SES message id).
_INSERT_SENT_EMAILS = """
INSERT INTO notifications (id, service_id, template_id, template_version, key_type, notification_type, lane, "to",
                           normalised_to, subject, body, client_reference, status, reference, sent_by,
                           sending_started_at, sent_at)
SELECT gen_random_uuid(), CAST(:service_id AS uuid), CAST(:template_id AS uuid), 1, 'normal', 'email', 'normal',
       'bench.recipient@example.com', 'bench.recipient@example.com', 'Hello Ada', 'Hi Ada, your code is 123456.',
       CAST(:client_reference AS text), 'sending', CAST(:prefix AS text) || i, 'ses', now(), now()
FROM generate_series(1, CAST(:size AS integer)) AS i
"""
_ENQUEUE_CHUNK = 5_000


async def _enqueue_deliveries(stack: BenchStack, aws_settings: AwsSettings, prefix: str, size: int) -> None:
    """Put one SNS-wrapped SES Delivery event per reference on the fake's delivery queue, in chunks."""
    queue, topic = aws_settings.delivery_queue, aws_settings.ses_delivery_topic
    async with httpx.AsyncClient(timeout=120) as client:
        for start in range(1, size + 1, _ENQUEUE_CHUNK):
            references = (f"{prefix}{i}" for i in range(start, min(start + _ENQUEUE_CHUNK, size + 1)))
            bodies = [sns_envelope(delivery_event(reference), topic=topic) for reference in references]
            response = await client.post(f"{stack.fake_url}/_fake/queues/{queue}", content=orjson.dumps(bodies))
            response.raise_for_status()


async def _wait_exit(managed: Managed, timeout_s: float) -> float:
    """Wait for a process to exit (raise with its log tail if it fails); return its last peak RSS sample in MiB."""
    deadline = time.monotonic() + timeout_s
    peak = 0.0
    while managed.alive():
        if time.monotonic() > deadline:
            await asyncio.to_thread(managed.stop)
            raise RuntimeError(f"{managed.name} did not finish in {timeout_s:.0f} s:\n{managed.log_tail()}")
        peak = max([peak, *managed.peak_rss_mib()])  # VmHWM only grows: the last sample is the closest to the peak
        await asyncio.sleep(0.1)
    if managed.popen.returncode != 0:
        raise RuntimeError(f"{managed.name} exited ({managed.popen.returncode}):\n{managed.log_tail()}")
    return peak


def _poll_report(output: str, queue: str) -> dict[str, Any]:
    """Return the JSON line `notify receipts poll --json` printed for `queue` (its log lines are skipped)."""
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        with contextlib.suppress(orjson.JSONDecodeError):
            report = orjson.loads(line)
            if isinstance(report, dict) and report.get("queue") == queue and "elapsed_s" in report:
                return report
    raise RuntimeError(f"notify receipts poll printed no result for {queue}:\n{output[-3000:]}")


async def bench_receipts(stack: BenchStack, seed: Seed, options: Options, report: Report) -> None:
    """Apply `size` SES Delivery events from the fake SQS with one `notify receipts poll` process; events/s."""
    size = options.size or 20_000
    await stack.stop_workers()  # their cron pollers would drain the same queue
    run_id = uuid.uuid4().hex[:8]
    client_reference, prefix = f"bench-rcpt-{run_id}", f"bench-rcpt-{run_id}-"
    aws_settings = stack.settings().aws
    await stack.execute(
        _INSERT_SENT_EMAILS,
        service_id=str(seed.service_id),
        template_id=str(seed.email_template_id),
        client_reference=client_reference,
        prefix=prefix,
        size=size,
    )
    await _enqueue_deliveries(stack, aws_settings, prefix, size)

    # What the poller will use: its environment is this process's plus the stack's (which leaves this one alone).
    concurrency = Settings(_env_file=None).aws.receipt_receive_concurrency
    budget_s = max(120.0, size / 100)  # the default 50 s budget could end the run before the queue is empty
    meter = CpuMeter({})
    meter.start()
    poller = stack.start_notify(
        "receipts-poll",
        ["receipts", "poll", "--queue", "deliveries", "--json"],
        {"NOTIFY_AWS__RECEIPT_POLL_BUDGET_S": str(budget_s)},
    )
    peak_rss_mib = await _wait_exit(poller, timeout_s=budget_s + START_TIMEOUT_S)
    meter.stop()
    result = _poll_report(poller.log.read_text(errors="replace"), "deliveries")
    applied, elapsed_s, cpu_s = int(result["applied"]), float(result["elapsed_s"]), float(result["cpu_s"])
    delivered = await stack.scalar(
        "SELECT count(*) FROM notifications WHERE client_reference = :reference AND status = 'delivered'",
        reference=client_reference,
    )
    visible, in_flight = await stack.fake_queue(aws_settings.delivery_queue)
    report.figures.append(
        Figure("receipts", "events applied/s", applied / elapsed_s if elapsed_s else None, "/s", None, "", "≥ 2,000/s")
    )
    report.notes += [
        f"receipts: {applied} of {size} events applied ({result['received']} received, {result['deleted']} deleted, "
        f"{result['unknown']} unknown, {result['malformed']} malformed) in {elapsed_s:.2f} s by one `notify receipts "
        f"poll --queue deliveries` process, {concurrency} concurrent ReceiveMessage per round, no worker running",
        f"receipts cross-check: {delivered} of {size} rows delivered in PostgreSQL; {visible} messages left visible "
        f"and {in_flight} in flight on the fake queue",
        f"receipts CPU per event: poller {1000 * cpu_s / max(applied, 1):.2f} ms (its process time while polling); "
        f"box busy {meter.box_busy_pct:.0f} %, steal {meter.steal_pct:.0f} % over the poller's life (start-up "
        f"included); poller peak RSS (VmHWM) {peak_rss_mib:.0f} MiB",
        f"receipts: the fake SQS answers every ReceiveMessage and DeleteMessageBatch after {stack.ses_latency_ms:g} ms "
        "(--ses-latency-ms delays every AWS request, SQS included)",
    ]


BENCHES = {
    "ingest": bench_ingest,
    "e2e": bench_e2e,
    "latency": bench_latency,
    "bulk": bench_bulk,
    "receipts": bench_receipts,
}


async def run(
    names: list[str],
    options: Options,
    *,
    workdir: Path,
    api_workers: int,
    worker_procs: int,
    ses_latency_ms: float,
    revision: str = "head",
) -> Report:
    """Start the stack once, run the named benchmarks in order and return the report."""
    report = Report()
    report.notes.append(f"load generator: {generator_name(options.use_wrk)}")
    stack = BenchStack(
        workdir, api_workers=api_workers, worker_procs=worker_procs, ses_latency_ms=ses_latency_ms, revision=revision
    )
    try:
        await stack.start_servers()
        report.notes += stack.warnings
        seed = await stack.seed()
        for index, name in enumerate(names):
            if index:
                await stack.settle()
            await BENCHES[name](stack, seed, options, report)
        if stack.api is not None and stack.api.alive():
            report.notes.append(f"API CPU priority (NOTIFY_API__NICE): {stack.api.priority()}")
    finally:
        await stack.close()
    return report
