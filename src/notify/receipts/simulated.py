"""Receipts for test-key notifications, which never reach AWS (DESIGN §4.6)."""

from __future__ import annotations

from notify.notifications import statuses
from notify.receipts.schemas import StatusReceipt

PERMANENT_FAILURE_EMAIL = "perm-fail@simulator.notify"
TEMPORARY_FAILURE_EMAIL = "temp-fail@simulator.notify"
PERMANENT_FAILURE_SMS = "+15149301632"
TEMPORARY_FAILURE_SMS = "+15149301633"


def simulated_receipt(notification_type: str, to: str, reference: str) -> StatusReceipt:
    """Return the receipt SES/SMS would have sent for a test-key notification to `to` with fake `reference`."""
    recipient = to.strip().lower()
    if recipient in (PERMANENT_FAILURE_EMAIL, PERMANENT_FAILURE_SMS):
        subtype = "General" if notification_type == "email" else "INVALID"
        return StatusReceipt(reference, statuses.PERMANENT_FAILURE, "Permanent", subtype)
    if recipient in (TEMPORARY_FAILURE_EMAIL, TEMPORARY_FAILURE_SMS):
        subtype = "General" if notification_type == "email" else "UNREACHABLE"
        return StatusReceipt(reference, statuses.TEMPORARY_FAILURE, "Transient", subtype)
    return StatusReceipt(reference, statuses.DELIVERED)
