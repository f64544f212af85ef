"""Accept a notification on the hot path: validate, render, XADD (DESIGN §2.1). No PostgreSQL when warm."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import redis.exceptions
import structlog

from notify.attachments import service as attachments
from notify.auth.service import Caller
from notify.errors import BadRequestError, ServiceUnavailableError
from notify.inbox import streams
from notify.inbox.schemas import InboxEntry
from notify.limits import service as limits
from notify.notifications import validation
from notify.notifications.schemas import PostEmailRequest, PostSmsRequest
from notify.notifications.simulated import is_simulated
from notify.services import senders
from notify.services.safelist import check_recipient
from notify.state import ApiState
from notify.templates import rendering
from notify.templates.service import TemplateSnapshot

log = structlog.get_logger(__name__)


async def _template(state: ApiState, caller: Caller, template_id: str, notification_type: str) -> TemplateSnapshot:
    template = await state.templates.usable(caller.service.id, template_id)
    if template.template_type != notification_type:
        raise BadRequestError(f"{template.template_type} template is not suitable for {notification_type} notification")
    return template


def _missing(template: TemplateSnapshot, exc: rendering.MissingPersonalisationError) -> BadRequestError:
    return BadRequestError(f"Missing personalisation for template ID {template.id}: {', '.join(exc.names)}")


def _uri(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


async def _publish(
    state: ApiState, caller: Caller, entry: InboxEntry, units: int = 1, *, simulated: bool = False
) -> None:
    """Enforce the limits and XADD the entry; a simulated recipient only counts against the rate limit.

    With `NOTIFY_REDIS__APPEND_IN_LIMITS_SCRIPT` (the default) the limits script adds the entry itself, in the
    same round trip; otherwise the XADD follows as a command of its own.
    """
    one_script = state.settings.redis.append_in_limits_script and not simulated
    append = (
        limits.Append(streams.Stream(entry.notification_type, entry.lane).inbox, streams.FIELD, entry.to_bytes())
        if one_script
        else None
    )
    try:
        await limits.enforce(
            state.commands,
            caller.service,
            entry.key_type,
            entry.notification_type,
            units,
            interval_s=state.settings.limits.rate_interval_s,
            count_daily=not simulated,
            now=entry.created_at,
            append=append,
        )
        if simulated:
            log.info("notify.api.simulated", notification_id=str(entry.id), type=entry.notification_type)
            return
        if one_script:
            streams.count_accepted(entry)
        else:
            await streams.publish(state.commands, entry)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        log.error("notify.api.redis_unavailable", error=type(exc).__name__)
        raise ServiceUnavailableError(
            "Service temporarily unavailable, the notification was not accepted: try again",
            retry_after_s=state.settings.redis.retry_after_s,
        ) from exc


def _response(base_url: str, entry: InboxEntry, template: TemplateSnapshot, content: dict[str, Any]) -> dict[str, Any]:
    """The 201 body, shaped as `PostNotificationResponse` (a dict: 0.4 µs, against 5.7 µs through the models)."""
    notification_id = str(entry.id)
    template_id = str(template.id)
    return {
        "id": notification_id,
        "reference": entry.client_reference,
        "uri": _uri(base_url, f"/v2/notifications/{notification_id}"),
        "template": {
            "id": template_id,
            "version": template.version,
            "uri": _uri(base_url, f"/services/{template.service_id}/templates/{template_id}"),
        },
        "content": content,
        "scheduled_for": entry.scheduled_for.isoformat() if entry.scheduled_for else None,
    }


async def accept_email(state: ApiState, caller: Caller, request: PostEmailRequest, base_url: str) -> dict[str, Any]:
    """Validate, render and enqueue one email; return the 201 body (a `PostNotificationResponse`).

    A simulated recipient is validated and rendered like any other, skips the safelist, counts against the rate
    limit (as in GC Notify) but not the daily limit, and is never stored, uploaded or sent.
    """
    now = datetime.now(UTC)
    normalised = validation.check_email(request.email_address)
    simulated = is_simulated(state.settings.api, normalised)
    if not simulated:
        check_recipient(caller.service, caller.key.key_type, normalised)
    scheduled_for = validation.check_scheduled_for(request.scheduled_for, now)
    notification_id = uuid.uuid4()
    files = attachments.prepare(
        request.personalisation,
        service_id=caller.service.id,
        notification_id=notification_id,
        limits=state.settings.limits,
    )
    validation.check_personalisation_size(files.personalisation, state.settings.limits.personalisation_max_bytes)
    template = await _template(state, caller, request.template_id, "email")
    reply_to = senders.resolve_reply_to(caller.service, request.email_reply_to_id, "email_reply_to_id")
    try:
        subject, body = rendering.fill_email(template.subject or "", template.content, files.display or {})
    except rendering.MissingPersonalisationError as exc:
        raise _missing(template, exc) from exc
    if not body.strip():
        raise BadRequestError("Message is empty or just whitespace")
    entry = InboxEntry(
        id=notification_id,
        service_id=caller.service.id,
        template_id=template.id,
        template_version=template.version,
        api_key_id=caller.key.id,
        key_type=caller.key.key_type,
        notification_type="email",
        lane=template.process_type,
        to=request.email_address.strip(),
        normalised_to=normalised,
        personalisation=files.personalisation,
        subject=subject,
        body=body,
        client_reference=request.reference,
        reply_to=reply_to,
        created_at=now,
        scheduled_for=scheduled_for,
    )
    if simulated:
        await _publish(state, caller, entry, simulated=True)
    else:
        async with attachments.stored(state.s3, files.files, state.settings.redis.retry_after_s):
            await _publish(state, caller, entry)
    from_email = caller.service.from_email(state.settings.aws.email_domain)
    return _response(base_url, entry, template, {"subject": subject, "body": body, "from_email": from_email})


async def accept_sms(state: ApiState, caller: Caller, request: PostSmsRequest, base_url: str) -> dict[str, Any]:
    """Validate, render and enqueue one text message; return the 201 body (simulated numbers: see accept_email)."""
    now = datetime.now(UTC)
    normalised = validation.check_phone(request.phone_number)
    simulated = is_simulated(state.settings.api, normalised)
    if not simulated:
        check_recipient(caller.service, caller.key.key_type, normalised)
    scheduled_for = validation.check_scheduled_for(request.scheduled_for, now)
    attachments.reject_files(request.personalisation)
    validation.check_personalisation_size(request.personalisation, state.settings.limits.personalisation_max_bytes)
    template = await _template(state, caller, request.template_id, "sms")
    sender = senders.resolve_sms_sender(
        caller.service, request.sms_sender_id, state.settings.aws.sms_sender_id, "sms_sender_id"
    )
    try:
        rendered = rendering.render_sms(template.content, request.personalisation or {})
    except rendering.MissingPersonalisationError as exc:
        raise _missing(template, exc) from exc
    if not rendered.body.strip():
        raise BadRequestError("Message is empty or just whitespace")
    limit = state.settings.limits.sms_max_chars
    if rendered.character_count > limit:
        raise BadRequestError(f"Content for template has a character count greater than the limit of {limit}")
    entry = InboxEntry(
        id=uuid.uuid4(),
        service_id=caller.service.id,
        template_id=template.id,
        template_version=template.version,
        api_key_id=caller.key.id,
        key_type=caller.key.key_type,
        notification_type="sms",
        lane=template.process_type,
        to=request.phone_number.strip(),
        normalised_to=normalised,
        personalisation=request.personalisation,
        body=rendered.body,
        client_reference=request.reference,
        sender=sender,
        created_at=now,
        scheduled_for=scheduled_for,
    )
    await _publish(state, caller, entry, rendered.fragment_count, simulated=simulated)
    return _response(base_url, entry, template, {"body": rendered.body, "from_number": sender})
