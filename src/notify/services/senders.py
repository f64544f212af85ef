"""Choose the reply-to address or SMS sender of a notification: the one asked for by id, else the default."""

from __future__ import annotations

from notify.errors import BadRequestError
from notify.notifications import validation
from notify.services.context import ServiceContext


def resolve_reply_to(service: ServiceContext, raw_id: str | None, field: str) -> str | None:
    """Return the reply-to address with id `raw_id` (named `field` in errors), or the service default."""
    if raw_id is None:
        return service.default_reply_to()
    reply_to_id = validation.check_uuid(field, raw_id)
    address = service.reply_to_address(reply_to_id)
    if address is None:
        raise BadRequestError(f"{field} {reply_to_id} does not exist in database for service id {service.id}")
    return address


def resolve_sms_sender(service: ServiceContext, raw_id: str | None, default: str | None, field: str) -> str | None:
    """Return the SMS sender with id `raw_id` (named `field` in errors), else the service's, else `default`."""
    if raw_id is None:
        return service.default_sms_sender() or service.sms_sender or default
    sender_id = validation.check_uuid(field, raw_id)
    sender = service.sms_sender_text(sender_id)
    if sender is None:
        raise BadRequestError(f"{field} {sender_id} does not exist in database for service id {service.id}")
    return sender
