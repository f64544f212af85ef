"""Serve the v2 template endpoints: one template, one version, the list and the preview."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from notify.auth.service import Caller
from notify.errors import BadRequestError, NotFoundError, ValidationError
from notify.notifications.validation import check_uuid
from notify.state import ApiState
from notify.templates import rendering, repository
from notify.templates.models import TEMPLATE_TYPES, Template, TemplateVersion
from notify.templates.schemas import (
    Placeholder,
    PreviewRequest,
    PreviewResponse,
    TemplateListResponse,
    TemplateResponse,
)

LIST_PARAMETERS = frozenset({"type"})


def _format(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


def serialise(
    template: Template | TemplateVersion, *, created_at: datetime, updated_at: datetime | None
) -> TemplateResponse:
    """Return the public view of a template or one of its versions."""
    texts = (template.subject or "", template.content) if template.template_type == "email" else (template.content,)
    return TemplateResponse(
        id=str(template.template_id if isinstance(template, TemplateVersion) else template.id),
        type=template.template_type,
        created_at=_format(created_at) or "",
        updated_at=_format(updated_at),
        created_by=None,
        version=template.version,
        body=template.content,
        subject=template.subject if template.template_type == "email" else None,
        name=template.name,
        personalisation={name: Placeholder() for name in rendering.placeholders(*texts)},
    )


async def _load(state: ApiState, caller: Caller, template_id: str) -> Template:
    wanted = check_uuid("template_id", template_id)
    async with state.sessionmaker() as session:
        template = await repository.get(session, caller.service.id, wanted)
    if template is None:
        raise NotFoundError("No result found")
    return template


async def get_one(state: ApiState, caller: Caller, template_id: str) -> TemplateResponse:
    """Return the current version of one of the caller's templates, or raise 404."""
    template = await _load(state, caller, template_id)
    return serialise(template, created_at=template.created_at, updated_at=template.updated_at)


async def get_version(state: ApiState, caller: Caller, template_id: str, version: str) -> TemplateResponse:
    """Return one version of one of the caller's templates, or raise 404."""
    wanted = check_uuid("template_id", template_id)
    try:
        number = int(version)
    except ValueError as exc:
        raise ValidationError([f"version {version} is not of type integer"]) from exc
    async with state.sessionmaker() as session:
        template = await repository.get(session, caller.service.id, wanted)
        found = await repository.get_version(session, caller.service.id, wanted, number) if template else None
    if template is None or found is None:
        raise NotFoundError("No result found")
    return serialise(found, created_at=template.created_at, updated_at=found.created_at)


async def list_all(state: ApiState, caller: Caller, params: Sequence[tuple[str, str]]) -> TemplateListResponse:
    """Return the caller's templates that are not archived, optionally of one type."""
    unknown = sorted({name for name, _ in params} - LIST_PARAMETERS)
    if unknown:
        raise ValidationError([f"Additional properties are not allowed ({name} was unexpected)" for name in unknown])
    types = [value for name, value in params if name == "type"]
    for template_type in types:
        if template_type not in TEMPLATE_TYPES:
            raise ValidationError([f"type {template_type} is not one of [{', '.join(TEMPLATE_TYPES)}]"])
    async with state.sessionmaker() as session:
        templates = await repository.list_for_service(session, caller.service.id)
    return TemplateListResponse(
        templates=[
            serialise(t, created_at=t.created_at, updated_at=t.updated_at)
            for t in templates
            if not t.archived and (not types or t.template_type in types)
        ]
    )


async def preview(state: ApiState, caller: Caller, template_id: str, request: PreviewRequest) -> PreviewResponse:
    """Render one of the caller's templates with the given personalisation."""
    template = await _load(state, caller, template_id)
    try:
        if template.template_type == "email":
            email = rendering.render_email(template.subject or "", template.content, request.personalisation)
            body, html, subject = email.body, email.html, email.subject
        else:
            body, html, subject = rendering.render_sms(template.content, request.personalisation).body, None, None
    except rendering.MissingPersonalisationError as exc:
        raise BadRequestError(f"Missing personalisation: {', '.join(exc.names)}") from exc
    return PreviewResponse(
        id=str(template.id),
        type=template.template_type,
        version=template.version,
        body=body,
        html=html,
        subject=subject,
    )
