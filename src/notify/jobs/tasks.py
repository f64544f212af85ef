"""arq jobs and cron jobs of bulk jobs and scheduling (DESIGN §2.3, §2.4)."""

from __future__ import annotations

import uuid
from typing import Any

from notify.context import from_ctx
from notify.jobs import processing


async def process_job(ctx: dict[str, Any], job_id: str) -> int:
    """Save a pending job's rows as notifications and enqueue their delivery; return how many were saved."""
    return await processing.process(from_ctx(ctx), uuid.UUID(job_id))


async def check_job_status(ctx: dict[str, Any]) -> int:
    """Resume jobs that made no progress for JOB_STALL_AFTER; return how many."""
    return await processing.resume_stalled(from_ctx(ctx))


async def run_scheduled_jobs(ctx: dict[str, Any]) -> int:
    """Start scheduled jobs that are due; return how many."""
    return await processing.start_scheduled(from_ctx(ctx))


async def send_scheduled_notifications(ctx: dict[str, Any]) -> int:
    """Enqueue delivery of scheduled notifications that are due; return how many."""
    return await processing.send_scheduled_notifications(from_ctx(ctx))
