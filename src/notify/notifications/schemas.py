"""Request and response bodies of the v2 notifications API (DESIGN §4.1)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class PostEmailRequest(BaseModel):
    """POST /v2/notifications/email."""

    model_config = ConfigDict(extra="forbid")

    email_address: str
    template_id: str
    personalisation: dict[str, Any] | None = None
    reference: str | None = None
    email_reply_to_id: str | None = None
    scheduled_for: str | None = None


class PostSmsRequest(BaseModel):
    """POST /v2/notifications/sms."""

    model_config = ConfigDict(extra="forbid")

    phone_number: str
    template_id: str
    personalisation: dict[str, Any] | None = None
    reference: str | None = None
    sms_sender_id: str | None = None
    scheduled_for: str | None = None


class TemplateRef(BaseModel):
    """The template a notification was made from."""

    id: str
    version: int
    uri: str


class EmailContent(BaseModel):
    """Rendered email content."""

    subject: str
    body: str
    from_email: str


class SmsContent(BaseModel):
    """Rendered SMS content."""

    body: str
    from_number: str | None


class PostNotificationResponse(BaseModel):
    """201 body of POST /v2/notifications/email and /sms."""

    id: str
    reference: str | None
    uri: str
    template: TemplateRef
    content: EmailContent | SmsContent
    scheduled_for: str | None


class NotificationResponse(BaseModel):
    """One notification, as GET returns it (GC Notify's serialisation)."""

    id: str
    reference: str | None
    email_address: str | None
    phone_number: str | None
    line_1: None = None
    line_2: None = None
    line_3: None = None
    line_4: None = None
    line_5: None = None
    line_6: None = None
    postcode: None = None
    type: str
    status: str
    status_description: str
    provider_response: str | None
    template: TemplateRef
    body: str
    subject: str | None
    created_at: str
    created_by_name: None = None
    sent_at: str | None
    completed_at: str | None
    scheduled_for: str | None
    postage: None = None


class Links(BaseModel):
    """Paging links."""

    current: str
    next: str | None = None


class NotificationListResponse(BaseModel):
    """GET /v2/notifications."""

    notifications: list[NotificationResponse]
    links: Links
