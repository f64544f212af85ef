"""Error reporting to Sentry when `SENTRY_DSN` is set, with email addresses and phone numbers scrubbed (DESIGN §2.7)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import sentry_sdk
import structlog

from notify.logging import redact
from notify.settings import Settings

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

log = structlog.get_logger(__name__)

# Only these parts of an event carry text from us or our users; ids, timestamps, trace ids and file paths elsewhere
# must stay intact (the phone pattern would mangle an ISO date). Exceptions are scrubbed apart: their values and
# frame variables, not their file names and line numbers.
_SCRUBBED = ("message", "logentry", "extra", "breadcrumbs", "request", "tags", "user")
# UUIDs and ISO dates look like phone numbers to `redact`; they are split out and kept as they are.
_KEEP = re.compile(
    r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)"
)


def redact_text(text: str) -> str:
    """Mask email addresses and phone numbers in `text` (`notify.logging.redact`), leaving UUIDs and dates."""
    parts = _KEEP.split(text)
    return "".join(part if number % 2 else redact(part) for number, part in enumerate(parts))


def init_sentry(settings: Settings, component: str, *, transport: Any = None) -> bool:
    """Start reporting to Sentry when a DSN is set; return whether it was started.

    `component` (`api`, `worker`) becomes a tag. `transport` replaces the HTTP transport (tests).
    """
    if not settings.sentry.dsn:
        return False
    integrations: list[Any] = []
    if component == "api":
        from sentry_sdk.integrations.fastapi import FastApiIntegration
        from sentry_sdk.integrations.starlette import StarletteIntegration

        integrations = [StarletteIntegration(), FastApiIntegration()]
    options: dict[str, Any] = {}
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(
        dsn=settings.sentry.dsn,
        environment=settings.sentry.environment,
        server_name=component,
        include_local_variables=False,  # locals hold recipients; scrubbing is the second line of defence
        max_request_body_size="never",
        # Final failures are reported explicitly (capture_final_failure); arq's own integration would also
        # report every retried attempt.
        auto_enabling_integrations=False,
        integrations=integrations,
        before_send=before_send,
        before_breadcrumb=lambda crumb, _hint: scrub(crumb),
        **options,
    )
    sentry_sdk.set_tag("component", component)
    log.info("notify.sentry.enabled", component=component, environment=settings.sentry.environment)
    return True


def scrub(value: Any) -> Any:
    """Return `value` with every string inside it (keys included) passed through `redact_text`."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {scrub(k) if isinstance(k, str) else k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def before_send(event: Event, _hint: Hint) -> Event:
    """Scrub email addresses and phone numbers from every part of an event that may carry them."""
    data = cast("dict[str, Any]", event)
    for key in _SCRUBBED:
        if key in data:
            data[key] = scrub(data[key])
    for exception in (data.get("exception") or {}).get("values") or []:
        if isinstance(exception.get("value"), str):
            exception["value"] = redact_text(exception["value"])
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            if "vars" in frame:
                frame["vars"] = scrub(frame["vars"])
    return event


def capture_final_failure(event: str, reason: str, **context: Any) -> None:
    """Report a failure nothing will retry (a job's final failure, a message that cannot be processed).

    `event` is the structured log event name; events group by it in Sentry. No-op without a DSN.
    """
    if not sentry_sdk.is_initialized():
        return
    with sentry_sdk.new_scope() as scope:
        scope.fingerprint = [event]
        scope.set_tag("event", event)
        for key, value in context.items():
            scope.set_extra(key, value)
        sentry_sdk.capture_message(f"{event}: {reason}", level="error")


def capture_final_failures(event: str, failures: list[tuple[Any, str]], **context: Any) -> None:
    """Report a batch of final failures as one event per distinct reason, with a few of the ids."""
    if not failures or not sentry_sdk.is_initialized():
        return
    reasons = Counter(reason for _, reason in failures)
    for reason, count in reasons.items():
        ids = [str(item_id) for item_id, item_reason in failures if item_reason == reason][:10]
        capture_final_failure(event, reason, count=count, ids=ids, **context)
