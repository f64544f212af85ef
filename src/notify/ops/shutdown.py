"""Graceful worker shutdown: on SIGTERM stop reading the inbox at once, let running jobs finish, then stop.

arq's own handler (with `job_completion_wait`) stops picking new jobs and gives running ones that many seconds
before cancelling them. A `beat-inbox-*` job would otherwise keep reading new entries for the rest of its second;
setting `WorkerContext.stopping` makes it save what it has read and return, so entries are either saved and
acknowledged or left unread/pending in Redis (never half-handled): whatever is pending is saved again by
in-flight-to-inbox, and whatever is cancelled mid-send is put back by replay-created-notifications.
"""

from __future__ import annotations

from signal import Signals
from typing import Any

import structlog
from arq.worker import Worker

from notify.context import WorkerContext

log = structlog.get_logger(__name__)


def mark_stopping(ctx: dict[str, Any]) -> None:
    """Tell this worker's inbox readers to stop reading."""
    app = ctx.get("notify")
    if isinstance(app, WorkerContext) and not app.stopping.is_set():
        app.stopping.set()
        log.info("notify.worker.stopping")


class GracefulWorker(Worker):
    """An arq Worker whose signal handlers first stop the inbox readers."""

    def handle_sig(self, signum: Signals) -> None:
        """Stop reading the inbox, then cancel the running jobs (arq's default)."""
        mark_stopping(self.ctx)
        super().handle_sig(signum)

    def handle_sig_wait_for_completion(self, signum: Signals) -> None:
        """Stop reading the inbox, then let running jobs finish within `job_completion_wait`."""
        mark_stopping(self.ctx)
        super().handle_sig_wait_for_completion(signum)
