"""Micro-benchmark of the SES send path: CPU per SendEmail, aioboto3 vs the lean sender (a run, not a test).

The lean sender runs twice: over its HTTP/1.1 client (the default) and over aiohttp (`NOTIFY_AWS__LEAN_HTTP=false`).

Run against the fake AWS endpoint in its own process (so its CPU is not counted here)::

    python -m notify.testing.fake_aws --port 9999 &
    python -m notify.bench.sendpath --endpoint http://127.0.0.1:9999 --count 5000 --concurrency 100 --rounds 2

Every sender sends the same message through `send_email` (the protocol the worker uses) with `concurrency`
sends in flight and a pool of the same size; CPU is this process's `time.process_time()` over each timed run,
after a warm-up of 500 sends. Rounds alternate the senders so drifting machine load hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

from notify import aws
from notify.delivery.lean import lean_senders
from notify.delivery.senders import EmailMessage, EmailSender, SesEmailSender
from notify.settings import AwsSettings

MESSAGE = EmailMessage(
    to="bench.recipient@example.com",
    from_address='"Bench" <bench@notify.example.com>',
    subject="Hello Ada",
    html="<p>Hi Ada, your code is 123456.</p>",
    text="Hi Ada, your code is 123456.",
    reply_to="help@notify.example.com",
)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def timed(sender: EmailSender, count: int, concurrency: int) -> tuple[float, float]:
    """Send `count` emails `concurrency` at a time; return (sends/s, CPU ms per send)."""
    left = [count]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            await sender.send_email(MESSAGE)

    cpu_start, start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return count / elapsed, 1000 * cpu / count


async def run(endpoint: str, count: int, concurrency: int, rounds: int) -> list[tuple[str, float, float]]:
    """Measure every sender `rounds` times, alternating; return (name, sends/s, CPU ms/send) rows."""
    settings = AwsSettings(
        endpoint_url=endpoint,
        access_key_id="bench",
        secret_access_key="bench",
        max_pool_connections=concurrency,
    )
    session = aws.create_session(settings)
    rows: list[tuple[str, float, float]] = []
    async with (
        session.client("sesv2", **aws.client_kwargs(settings)) as ses,
        lean_senders(session, settings) as (lean, _),
        lean_senders(session, settings.model_copy(update={"lean_http": False})) as (lean_aiohttp, _),
    ):
        senders: dict[str, Any] = {
            "aioboto3 SesEmailSender": SesEmailSender(ses, None),
            "LeanSesEmailSender": lean,
            "LeanSesEmailSender/aiohttp": lean_aiohttp,
        }
        for sender in senders.values():
            await timed(sender, 500, concurrency)  # warm-up: connections, endpoint rules, credentials
        for _ in range(rounds):
            for name, sender in senders.items():
                rate, cpu_ms = await timed(sender, count, concurrency)
                rows.append((name, rate, cpu_ms))
                _say(f"{name:28} {count} sends  {rate:8.0f}/s  {cpu_ms:.3f} ms CPU/send")
    return rows


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run the measurement and print a summary."""
    parser = argparse.ArgumentParser(prog="python -m notify.bench.sendpath", description=__doc__)
    parser.add_argument("--endpoint", default="http://127.0.0.1:9999")
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args(argv)
    _say(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    _say(f"loop: {args.loop}, count {args.count}, concurrency {args.concurrency} (pool {args.concurrency})")
    if args.loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            rows = runner.run(run(args.endpoint, args.count, args.concurrency, args.rounds))
    else:
        rows = asyncio.run(run(args.endpoint, args.count, args.concurrency, args.rounds))
    _say(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    best = {name: min(cpu for row_name, _, cpu in rows if row_name == name) for name, _, _ in rows}
    boto, lean, lean_aiohttp = (
        best["aioboto3 SesEmailSender"],
        best["LeanSesEmailSender"],
        best["LeanSesEmailSender/aiohttp"],
    )
    _say(
        f"best CPU/send: aioboto3 {boto:.3f} ms, lean {lean:.3f} ms (ratio {boto / lean:.1f}x), "
        f"lean over aiohttp {lean_aiohttp:.3f} ms"
    )


if __name__ == "__main__":
    main()
