"""Notification statuses and their public descriptions (DESIGN §3, §4.5)."""

from __future__ import annotations

CREATED = "created"
SENDING = "sending"
SENT = "sent"
DELIVERED = "delivered"
PERMANENT_FAILURE = "permanent-failure"
TEMPORARY_FAILURE = "temporary-failure"
TECHNICAL_FAILURE = "technical-failure"
CANCELLED = "cancelled"  # a scheduled notification cancelled before it was due

ALL = (CREATED, SENDING, SENT, DELIVERED, PERMANENT_FAILURE, TEMPORARY_FAILURE, TECHNICAL_FAILURE, CANCELLED)
FAILED = (PERMANENT_FAILURE, TEMPORARY_FAILURE, TECHNICAL_FAILURE)
FINAL = (DELIVERED, *FAILED)
# `completed_at` is shown for these (GC Notify: the time of the last status change).
COMPLETED = (SENT, *FINAL)

_EMAIL = {
    CREATED: "In transit",
    SENDING: "In transit",
    SENT: "In transit",
    DELIVERED: "Delivered",
    PERMANENT_FAILURE: "No such address",
    TEMPORARY_FAILURE: "Content or inbox issue",
    TECHNICAL_FAILURE: "Tech issue",
}
_SMS = {
    CREATED: "In transit",
    SENDING: "In transit",
    SENT: "Sent",
    DELIVERED: "Delivered",
    PERMANENT_FAILURE: "No such number",
    TEMPORARY_FAILURE: "Carrier issue",
    TECHNICAL_FAILURE: "Tech issue",
}


def describe(notification_type: str, status: str) -> str:
    """Return the status text clients show (`status_description`)."""
    table = _EMAIL if notification_type == "email" else _SMS
    return table.get(status, status)
