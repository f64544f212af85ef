"""Bodies of the admin API (`/admin/...`): what `notify admin` does, over HTTP."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from notify.auth.models import ApiKey
from notify.services.models import Service, ServiceEmailReplyTo, ServiceSmsSender
from notify.templates.models import Template


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateServiceRequest(_Request):
    """A new service; limits left out take the defaults."""

    name: str = Field(min_length=1, max_length=255)
    email_from: str | None = Field(default=None, max_length=255, description="Local part of the From address.")
    restricted: bool = Field(default=False, description="Trial mode: team and test keys only.")
    rate_limit: int | None = Field(default=None, ge=1)
    email_daily_limit: int | None = Field(default=None, ge=0)
    sms_daily_limit: int | None = Field(default=None, ge=0)


class UpdateServiceRequest(_Request):
    """Changes to a service: its limits, or `active: false` to suspend it."""

    rate_limit: int | None = Field(default=None, ge=1)
    email_daily_limit: int | None = Field(default=None, ge=0)
    sms_daily_limit: int | None = Field(default=None, ge=0)
    active: bool | None = None


class ServiceResponse(BaseModel):
    """A service."""

    id: uuid.UUID
    name: str
    active: bool
    restricted: bool
    email_from: str
    sending_domain: str | None
    rate_limit: int
    email_daily_limit: int
    sms_daily_limit: int
    retention_days: int

    @classmethod
    def of(cls, service: Service) -> ServiceResponse:
        """Build from the row."""
        return cls(
            id=service.id,
            name=service.name,
            active=service.active,
            restricted=service.restricted,
            email_from=service.email_from,
            sending_domain=service.sending_domain,
            rate_limit=service.rate_limit,
            email_daily_limit=service.email_daily_limit,
            sms_daily_limit=service.sms_daily_limit,
            retention_days=service.retention_days,
        )


class ServiceListResponse(BaseModel):
    """Every service, by name."""

    data: list[ServiceResponse]


class CreateKeyRequest(_Request):
    """A new API key."""

    name: str = Field(min_length=1, max_length=255)
    key_type: Literal["normal", "team", "test"] = "normal"


class NewKeyResponse(BaseModel):
    """A new API key: `key` is shown this once and never stored in plaintext."""

    id: uuid.UUID
    name: str
    key_type: str
    key: str


class RevokedKeyResponse(BaseModel):
    """A revoked API key."""

    id: uuid.UUID
    service_id: uuid.UUID
    name: str
    key_type: str
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> RevokedKeyResponse:
        """Build from the row."""
        return cls(
            id=key.id, service_id=key.service_id, name=key.name, key_type=key.key_type, revoked_at=key.revoked_at
        )


class CreateTemplateRequest(_Request):
    """A new template (version 1)."""

    type: Literal["email", "sms"]
    name: str = Field(min_length=1, max_length=255)
    content: str = Field(min_length=1)
    subject: str | None = None
    process_type: Literal["priority", "normal", "bulk"] = "normal"


class UpdateTemplateRequest(_Request):
    """Changes to a template; any change makes a new version."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    content: str | None = Field(default=None, min_length=1)
    subject: str | None = None
    process_type: Literal["priority", "normal", "bulk"] | None = None
    archived: bool | None = None


class TemplateResponse(BaseModel):
    """A template at its current version."""

    id: uuid.UUID
    service_id: uuid.UUID
    type: str
    name: str
    subject: str | None
    content: str
    process_type: str
    version: int
    archived: bool

    @classmethod
    def of(cls, template: Template) -> TemplateResponse:
        """Build from the row."""
        return cls(
            id=template.id,
            service_id=template.service_id,
            type=template.template_type,
            name=template.name,
            subject=template.subject,
            content=template.content,
            process_type=template.process_type,
            version=template.version,
            archived=template.archived,
        )


class TemplateListResponse(BaseModel):
    """A service's templates, by name."""

    data: list[TemplateResponse]


class SafelistRequest(_Request):
    """A recipient team keys (and a trial service) may send to."""

    recipient: str = Field(min_length=1, description="An email address or an international phone number.")


class SafelistResponse(BaseModel):
    """A service's safelist, normalised."""

    data: list[str]


class CallbackRequest(_Request):
    """A callback notify POSTs delivery statuses (or complaints) to."""

    url: str = Field(description="An https:// URL.")
    bearer_token: str = Field(min_length=10, description="Sent as `Authorization: Bearer <token>` with each callback.")
    callback_type: Literal["delivery_status", "complaint"] = "delivery_status"


class CallbackResponse(BaseModel):
    """The stored callback."""

    id: uuid.UUID
    service_id: uuid.UUID
    url: str
    callback_type: str


class ReplyToRequest(_Request):
    """A reply-to address; the first one, or one with `is_default`, becomes the default."""

    email_address: str = Field(min_length=3, max_length=255)
    is_default: bool = False


class ReplyToResponse(BaseModel):
    """A reply-to address; its id is the `email_reply_to_id` of a request."""

    id: uuid.UUID
    service_id: uuid.UUID
    email_address: str
    is_default: bool

    @classmethod
    def of(cls, row: ServiceEmailReplyTo) -> ReplyToResponse:
        """Build from the row."""
        return cls(id=row.id, service_id=row.service_id, email_address=row.email_address, is_default=row.is_default)


class ReplyToListResponse(BaseModel):
    """A service's reply-to addresses."""

    data: list[ReplyToResponse]


class SmsSenderRequest(_Request):
    """An SMS sender; the first one, or one with `is_default`, becomes the default."""

    sms_sender: str = Field(min_length=1, max_length=20, description="Up to 11 letters and digits, or a number.")
    is_default: bool = False


class SmsSenderResponse(BaseModel):
    """An SMS sender; its id is the `sms_sender_id` of a request."""

    id: uuid.UUID
    service_id: uuid.UUID
    sms_sender: str
    is_default: bool

    @classmethod
    def of(cls, row: ServiceSmsSender) -> SmsSenderResponse:
        """Build from the row."""
        return cls(id=row.id, service_id=row.service_id, sms_sender=row.sms_sender, is_default=row.is_default)


class SmsSenderListResponse(BaseModel):
    """A service's SMS senders."""

    data: list[SmsSenderResponse]
