"""What `notify retry` prints: a dry-run table, or a progress bar while the batches are reset and enqueued."""

from __future__ import annotations

import asyncio

from arq.connections import RedisSettings as ArqRedisSettings
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from notify.db import create_engine, create_sessionmaker
from notify.job_queue import create_queue
from notify.retry import service
from notify.retry.repository import Candidate
from notify.settings import Settings


def run(settings: Settings, console: Console, selection: service.Selection, *, dry_run: bool, batch_size: int) -> int:
    """Retry the selection (or, with `dry_run`, only show it); return how many were (or would be) retried."""
    return asyncio.run(_run(settings, console, selection, dry_run=dry_run, batch_size=batch_size))


async def _run(
    settings: Settings, console: Console, selection: service.Selection, *, dry_run: bool, batch_size: int
) -> int:
    engine = create_engine(settings.db, application_name="notify.retry")
    sessionmaker = create_sessionmaker(engine)
    try:
        total = await service.count(sessionmaker, selection)
        if dry_run:
            _show_sample(console, total, await service.sample(sessionmaker, selection))
            return total
        if total == 0:
            console.print("No failed notifications match: nothing to retry.")
            return 0
        queue = await create_queue(ArqRedisSettings.from_dsn(settings.redis.url))
        try:
            with Progress(
                TextColumn("Retrying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
            ) as progress:
                task = progress.add_task("retry", total=total)
                retried = await service.retry(
                    sessionmaker,
                    queue,
                    selection,
                    batch_size=batch_size,
                    on_batch=lambda n: progress.advance(task, n),
                )
        finally:
            await queue.aclose()
        console.print(f"Retried {retried} notification(s): delivery enqueued.")
        return retried
    finally:
        await engine.dispose()


def _show_sample(console: Console, total: int, candidates: list[Candidate]) -> None:
    console.print(f"Dry run: {total} notification(s) would be retried. Nothing was changed.")
    if not candidates:
        return
    table = Table("id", "type", "status", "feedback", "created at", title=f"First {len(candidates)}")
    for c in candidates:
        table.add_row(str(c.id), c.notification_type, c.status, c.feedback_subtype or "", c.created_at.isoformat())
    console.print(table)
