"""SQS bodies as they arrive: the SNS envelope, the SES event inside it, and SMS delivery events (DESIGN §2.5)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from notify.notifications import statuses


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class SnsEnvelope(_Event):
    """A standard (not raw) SNS→SQS delivery: the event is the JSON string in `Message`."""

    type: str = Field(alias="Type")
    message_id: str = Field(alias="MessageId")
    message: str = Field(alias="Message")
    timestamp: datetime | None = Field(default=None, alias="Timestamp")


class SesMail(_Event):
    """The `mail` object of every SES event; `messageId` is our notification's `reference`."""

    message_id: str = Field(alias="messageId")
    timestamp: datetime | None = None


class SesBounce(_Event):
    """SES `bounce`."""

    bounce_type: str = Field(alias="bounceType")
    bounce_sub_type: str | None = Field(default=None, alias="bounceSubType")
    feedback_id: str | None = Field(default=None, alias="feedbackId")
    timestamp: datetime | None = None


class SesComplaint(_Event):
    """SES `complaint`."""

    feedback_id: str = Field(alias="feedbackId")
    complaint_feedback_type: str | None = Field(default=None, alias="complaintFeedbackType")
    complaint_sub_type: str | None = Field(default=None, alias="complaintSubType")
    timestamp: datetime | None = None


class SesDelivery(_Event):
    """SES `delivery`."""

    timestamp: datetime | None = None


class SesReject(_Event):
    """SES `reject` (virus or policy: SES refused to send)."""

    reason: str | None = None


class SesEvent(_Event):
    """One SES event. Configuration-set events use `eventType`, identity notifications `notificationType`."""

    event_type: str | None = Field(default=None, alias="eventType")
    notification_type: str | None = Field(default=None, alias="notificationType")
    mail: SesMail
    bounce: SesBounce | None = None
    complaint: SesComplaint | None = None
    delivery: SesDelivery | None = None
    reject: SesReject | None = None

    @property
    def kind(self) -> str:
        """Return `Bounce`, `Complaint`, `Delivery`, `Reject`, … whichever field SES used."""
        return self.event_type or self.notification_type or ""


class SmsEvent(_Event):
    """An AWS End User Messaging SMS event (`TEXT_DELIVERED`, `TEXT_BLOCKED`, …) published through SNS."""

    event_type: str = Field(alias="eventType")
    message_id: str = Field(alias="messageId")
    message_status: str = Field(alias="messageStatus")
    message_status_description: str | None = Field(default=None, alias="messageStatusDescription")


@dataclass(frozen=True, slots=True)
class StatusReceipt:
    """A status change to apply to the notification whose provider reference is `reference`."""

    reference: str
    status: str
    feedback_type: str | None = None
    feedback_subtype: str | None = None
    feedback_id: str | None = None

    @property
    def rank(self) -> int:
        """Order statuses so the strongest of several events for one reference wins within a batch."""
        return {statuses.DELIVERED: 0, statuses.TEMPORARY_FAILURE: 1, statuses.PERMANENT_FAILURE: 2}.get(self.status, 0)


@dataclass(frozen=True, slots=True)
class ComplaintReceipt:
    """A complaint to record against the notification whose provider reference is `reference`."""

    reference: str
    feedback_id: str
    complaint_type: str | None
    complaint_date: datetime | None


@dataclass(frozen=True, slots=True)
class Applied:
    """A notification whose status the receipts path just changed (a callback may be due)."""

    notification_id: uuid.UUID
    status: str
    notification_type: str | None = None  # known when the receipts path applied it (for metrics)
    created_at: datetime | None = None
    sent_at: datetime | None = None
