"""The worker runs process_job and the three job crons every minute."""

from __future__ import annotations

from notify.settings import Settings
from notify.worker import build_worker


def test_worker_registers_job_functions_and_crons(settings: Settings) -> None:
    worker = build_worker(settings, burst=True, with_cron=True)
    assert "process_job" in worker.functions
    crons = {job.name: job for job in worker.cron_jobs}
    for name in ("check-job-status", "run-scheduled-jobs", "send-scheduled-notifications"):
        assert crons[name].second == {0}, name
