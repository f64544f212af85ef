"""The recovery cron jobs are registered in the worker with the cadences from the settings."""

from __future__ import annotations

from notify.recovery.tasks import every
from notify.settings import WorkerSettings
from notify.worker import build_worker
from tests.conftest import make_settings
from tests.servers import Servers


def test_every_turns_seconds_into_cron_sets() -> None:
    assert every(60) == {"second": {0}, "minute": set(range(60))}
    assert every(300) == {"second": {0}, "minute": {0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55}}
    assert every(15) == {"second": {0, 15, 30, 45}}


def test_the_worker_runs_the_recovery_jobs_on_the_configured_schedule(servers: Servers) -> None:
    settings = make_settings(
        servers, worker=WorkerSettings(inflight_check_interval_s=5, replay_interval_s=600, timeout_hour_utc=4)
    )
    worker = build_worker(settings, burst=True)
    jobs = {job.name: job for job in worker.cron_jobs}

    assert jobs["in-flight-to-inbox"].second == set(range(0, 60, 5))
    assert jobs["in-flight-to-inbox"].run_at_startup
    assert jobs["replay-created-notifications"].minute == {0, 10, 20, 30, 40, 50}
    assert (jobs["timeout-notifications"].hour, jobs["timeout-notifications"].minute) == ({4}, {0})
    assert not jobs["timeout-notifications"].run_at_startup
    assert not {job.name for job in build_worker(settings, burst=True, with_cron=False).cron_jobs}
