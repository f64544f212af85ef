"""Serve GET /v2/notifications and /v2/notifications/{id}."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from urllib.parse import urlencode

from notify.auth.service import Caller
from notify.errors import NotFoundError, ValidationError
from notify.notifications import repository, statuses
from notify.notifications.models import Notification
from notify.notifications.schemas import Links, NotificationListResponse, NotificationResponse, TemplateRef
from notify.notifications.validation import check_uuid
from notify.state import ApiState

LIST_PARAMETERS = frozenset({"status", "template_type", "reference", "older_than", "include_jobs"})


def format_datetime(value: datetime | None) -> str | None:
    """Format as GC Notify does: `2017-05-14T12:15:30.000000Z`."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


def serialise(notification: Notification, base_url: str) -> NotificationResponse:
    """Return the public view of a notification."""
    is_email = notification.notification_type == "email"
    return NotificationResponse(
        id=str(notification.id),
        reference=notification.client_reference,
        email_address=notification.to if is_email else None,
        phone_number=None if is_email else notification.to,
        type=notification.notification_type,
        status=notification.status,
        status_description=statuses.describe(notification.notification_type, notification.status),
        provider_response=notification.provider_response,
        template=TemplateRef(
            id=str(notification.template_id),
            version=notification.template_version,
            uri=f"{base_url.rstrip('/')}/v2/template/{notification.template_id}/version/{notification.template_version}",
        ),
        body=notification.body,
        subject=notification.subject,
        created_at=format_datetime(notification.created_at) or "",
        sent_at=format_datetime(notification.sent_at),
        completed_at=format_datetime(notification.updated_at) if notification.status in statuses.COMPLETED else None,
        scheduled_for=format_datetime(notification.scheduled_for),
    )


async def get_one(state: ApiState, caller: Caller, notification_id: str, base_url: str) -> NotificationResponse:
    """Return one of the caller's notifications, or raise 404."""
    wanted = check_uuid("notification_id", notification_id)
    async with state.sessionmaker() as session:
        notification = await repository.get(session, caller.service.id, wanted)
    if notification is None:
        raise NotFoundError("No result found")
    return serialise(notification, base_url)


def _flag(value: str) -> bool:
    if value in ("true", "True"):
        return True
    if value in ("false", "False"):
        return False
    raise ValidationError([f"include_jobs {value} is not one of [true, True, false, False]"])


async def list_page(
    state: ApiState, caller: Caller, params: Sequence[tuple[str, str]], base_url: str
) -> NotificationListResponse:
    """Return one page of the caller's notifications, filtered as the query asks."""
    unknown = sorted({name for name, _ in params} - LIST_PARAMETERS)
    if unknown:
        raise ValidationError([f"Additional properties are not allowed ({name} was unexpected)" for name in unknown])
    values: Mapping[str, list[str]] = {name: [v for n, v in params if n == name] for name in LIST_PARAMETERS}
    wanted_statuses: list[str] = []
    for status in values["status"]:
        if status == "failed":
            wanted_statuses.extend(statuses.FAILED)
        elif status in statuses.ALL:
            wanted_statuses.append(status)
        else:
            raise ValidationError([f"status {status} is not one of [{', '.join((*statuses.ALL, 'failed'))}]"])
    for template_type in values["template_type"]:
        if template_type not in ("email", "sms"):
            raise ValidationError([f"template_type {template_type} is not one of [email, sms]"])
    older_than = check_uuid("older_than", values["older_than"][-1]) if values["older_than"] else None
    include_jobs = _flag(values["include_jobs"][-1]) if values["include_jobs"] else False
    reference = values["reference"][-1] if values["reference"] else None
    async with state.sessionmaker() as session:
        rows = await repository.page(
            session,
            caller.service.id,
            key_type=caller.key.key_type,
            limit=state.settings.api.page_size,
            statuses=wanted_statuses,
            template_type=values["template_type"],
            reference=reference,
            older_than=older_than,
            include_jobs=include_jobs,
        )
    base = f"{base_url.rstrip('/')}/v2/notifications"
    kept = [(name, value) for name, value in params if name != "older_than"]
    current = f"{base}?{urlencode(params)}" if params else base
    links = Links(current=current)
    if rows:
        links.next = f"{base}?{urlencode([*kept, ('older_than', str(rows[-1].id))])}"
    return NotificationListResponse(notifications=[serialise(row, base_url) for row in rows], links=links)
