"""Turn SQS message bodies into receipts: SNS envelope → SES or SMS event → status change or complaint."""

from __future__ import annotations

from pydantic import ValidationError

from notify.notifications import statuses
from notify.receipts.schemas import ComplaintReceipt, SesEvent, SmsEvent, SnsEnvelope, StatusReceipt

Receipt = StatusReceipt | ComplaintReceipt

# End User Messaging SMS `messageStatus` values: the recipient can never get it vs. it may work later.
_SMS_DELIVERED = frozenset({"DELIVERED", "SUCCESSFUL"})
_SMS_PERMANENT = frozenset(
    {
        "BLOCKED",
        "CARRIER_BLOCKED",
        "INVALID",
        "INVALID_MESSAGE",
        "OPTED_OUT",
        "SPAM",
        "DESTINATION_COUNTRY_BLOCKED",
        "NO_ORIGINATION_IDENTITY_AVAILABLE_TO_SEND",
    }
)
_SMS_TEMPORARY = frozenset({"UNREACHABLE", "CARRIER_UNREACHABLE", "TTL_EXPIRED", "UNKNOWN", "MAX_PRICE_EXCEEDED"})


class MalformedReceiptError(ValueError):
    """The message is not an SNS envelope around an event we understand; it goes to the dead-letter queue."""


def _unwrap(body: str) -> str:
    try:
        return SnsEnvelope.model_validate_json(body).message
    except ValidationError as exc:
        raise MalformedReceiptError(f"not an SNS envelope: {exc.error_count()} errors") from exc


def parse_ses(body: str) -> Receipt | None:
    """Return the receipt in an SES event message, or None for event types that change nothing (Send, Open…)."""
    try:
        event = SesEvent.model_validate_json(_unwrap(body))
    except ValidationError as exc:
        raise MalformedReceiptError(f"not an SES event: {exc.error_count()} errors") from exc
    return ses_receipt(event)


def ses_receipt(event: SesEvent) -> Receipt | None:
    """Map an SES event to a receipt (DESIGN §2.5); Reject counts as a permanent failure with subtype `Rejected`."""
    reference = event.mail.message_id
    match event.kind:
        case "Delivery":
            return StatusReceipt(reference, statuses.DELIVERED)
        case "Bounce":
            if event.bounce is None:
                raise MalformedReceiptError("Bounce event without a bounce object")
            bounce = event.bounce
            status = statuses.PERMANENT_FAILURE if bounce.bounce_type == "Permanent" else statuses.TEMPORARY_FAILURE
            return StatusReceipt(reference, status, bounce.bounce_type, bounce.bounce_sub_type, bounce.feedback_id)
        case "Reject":
            return StatusReceipt(reference, statuses.PERMANENT_FAILURE, "Reject", "Rejected", None)
        case "Complaint":
            if event.complaint is None:
                raise MalformedReceiptError("Complaint event without a complaint object")
            complaint = event.complaint
            return ComplaintReceipt(
                reference, complaint.feedback_id, complaint.complaint_feedback_type, complaint.timestamp
            )
        case "":
            raise MalformedReceiptError("SES event without eventType")
        case _:
            return None


def parse_sms(body: str) -> Receipt | None:
    """Return the receipt in an SMS event message, or None while the message is still on its way."""
    try:
        event = SmsEvent.model_validate_json(_unwrap(body))
    except ValidationError as exc:
        raise MalformedReceiptError(f"not an SMS event: {exc.error_count()} errors") from exc
    state = event.message_status.upper()
    if state in _SMS_DELIVERED:
        return StatusReceipt(event.message_id, statuses.DELIVERED)
    if state in _SMS_PERMANENT:
        return StatusReceipt(event.message_id, statuses.PERMANENT_FAILURE, "Permanent", state)
    if state in _SMS_TEMPORARY:
        return StatusReceipt(event.message_id, statuses.TEMPORARY_FAILURE, "Transient", state)
    return None
