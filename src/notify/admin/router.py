"""HTTP routes of /admin: services, API keys, templates, safelists, callbacks and senders (DESIGN §4.1).

Every route needs `Authorization: Bearer <NOTIFY_API__ADMIN_TOKEN>`; with no token configured the whole admin
API answers 404. Each request is one transaction; cache invalidations are published after it commits.
"""

from __future__ import annotations

import hmac
import uuid

from fastapi import APIRouter, Depends, Request

from notify.admin import safelist as admin_safelist
from notify.admin import senders
from notify.admin import service as admin
from notify.admin.schemas import (
    CallbackRequest,
    CallbackResponse,
    CreateKeyRequest,
    CreateServiceRequest,
    CreateTemplateRequest,
    NewKeyResponse,
    ReplyToListResponse,
    ReplyToRequest,
    ReplyToResponse,
    RevokedKeyResponse,
    SafelistRequest,
    SafelistResponse,
    ServiceListResponse,
    ServiceResponse,
    SmsSenderListResponse,
    SmsSenderRequest,
    SmsSenderResponse,
    TemplateListResponse,
    TemplateResponse,
    UpdateServiceRequest,
    UpdateTemplateRequest,
)
from notify.auth.keys import SecretBox
from notify.db import transaction
from notify.dependencies import StateDep
from notify.errors import AuthError, NotFoundError

ADMIN_DISABLED = "admin API disabled: set NOTIFY_API__ADMIN_TOKEN to enable it"


async def require_admin(request: Request, state: StateDep) -> None:
    """Let the request through only with the configured admin bearer token."""
    configured = state.settings.api.admin_token
    expected = configured.get_secret_value() if configured is not None else ""
    if not expected:
        raise NotFoundError(ADMIN_DISABLED)
    header = request.headers.get("authorization")
    if not header:
        raise AuthError("Unauthorized: admin token must be provided", status_code=401)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise AuthError("Invalid token: admin token is not valid")


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


def _box(state: StateDep) -> SecretBox:
    return SecretBox(state.settings.api.secret_key.get_secret_value())


@router.post("/services", status_code=201)
async def create_service(body: CreateServiceRequest, state: StateDep) -> ServiceResponse:
    """Create a service."""
    async with transaction(state.sessionmaker) as session:
        service = await admin.create_service(session, **body.model_dump())
        return ServiceResponse.of(service)


@router.get("/services")
async def list_services(state: StateDep) -> ServiceListResponse:
    """List every service."""
    async with transaction(state.sessionmaker) as session:
        return ServiceListResponse(data=[ServiceResponse.of(s) for s in await admin.list_services(session)])


@router.patch("/services/{service_id}")
async def update_service(service_id: uuid.UUID, body: UpdateServiceRequest, state: StateDep) -> ServiceResponse:
    """Change a service's limits, or suspend (`active: false`) or resume it."""
    async with transaction(state.sessionmaker) as session:
        service = await admin.update_service(session, state.redis, service_id, **body.model_dump())
        return ServiceResponse.of(service)


@router.post("/services/{service_id}/api-keys", status_code=201)
async def create_key(service_id: uuid.UUID, body: CreateKeyRequest, state: StateDep) -> NewKeyResponse:
    """Create an API key; the key string is in this response only."""
    async with transaction(state.sessionmaker) as session:
        key = await admin.create_key(session, _box(state), service_id, name=body.name, key_type=body.key_type)
    return NewKeyResponse(id=key.id, name=key.name, key_type=key.key_type, key=key.key)


@router.delete("/api-keys/{key_id}")
async def revoke_key(key_id: uuid.UUID, state: StateDep) -> RevokedKeyResponse:
    """Revoke an API key; every API process forgets it at once."""
    async with transaction(state.sessionmaker) as session:
        return RevokedKeyResponse.of(await admin.revoke_key(session, state.redis, key_id))


@router.post("/services/{service_id}/templates", status_code=201)
async def create_template(service_id: uuid.UUID, body: CreateTemplateRequest, state: StateDep) -> TemplateResponse:
    """Create a template at version 1."""
    async with transaction(state.sessionmaker) as session:
        template = await admin.create_template(
            session,
            service_id,
            template_type=body.type,
            name=body.name,
            content=body.content,
            subject=body.subject,
            process_type=body.process_type,
        )
        return TemplateResponse.of(template)


@router.get("/services/{service_id}/templates")
async def list_templates(service_id: uuid.UUID, state: StateDep) -> TemplateListResponse:
    """List a service's templates, archived ones included."""
    async with transaction(state.sessionmaker) as session:
        templates = await admin.list_templates(session, service_id)
        return TemplateListResponse(data=[TemplateResponse.of(t) for t in templates])


@router.patch("/templates/{template_id}")
async def update_template(template_id: uuid.UUID, body: UpdateTemplateRequest, state: StateDep) -> TemplateResponse:
    """Change a template; this makes a new version."""
    async with transaction(state.sessionmaker) as session:
        template = await admin.update_template(session, state.redis, template_id, **body.model_dump())
        return TemplateResponse.of(template)


@router.post("/services/{service_id}/safelist", status_code=201)
async def add_to_safelist(service_id: uuid.UUID, body: SafelistRequest, state: StateDep) -> SafelistResponse:
    """Let team keys (and a trial service) send to a recipient; returns the whole safelist."""
    async with transaction(state.sessionmaker) as session:
        await admin_safelist.add(session, state.redis, service_id, body.recipient)
        return SafelistResponse(data=list(await admin_safelist.list_entries(session, service_id)))


@router.get("/services/{service_id}/safelist")
async def list_safelist(service_id: uuid.UUID, state: StateDep) -> SafelistResponse:
    """Show a service's safelist."""
    async with transaction(state.sessionmaker) as session:
        return SafelistResponse(data=list(await admin_safelist.list_entries(session, service_id)))


@router.post("/services/{service_id}/callbacks", status_code=201)
async def set_callback(service_id: uuid.UUID, body: CallbackRequest, state: StateDep) -> CallbackResponse:
    """Create or replace a service's callback (https only; a suspended callback is resumed)."""
    async with transaction(state.sessionmaker) as session:
        callback_id = await admin.set_callback(
            session,
            _box(state),
            service_id,
            url=body.url,
            bearer_token=body.bearer_token,
            callback_type=body.callback_type,
        )
    return CallbackResponse(id=callback_id, service_id=service_id, url=body.url, callback_type=body.callback_type)


@router.post("/services/{service_id}/reply-to", status_code=201)
async def add_reply_to(service_id: uuid.UUID, body: ReplyToRequest, state: StateDep) -> ReplyToResponse:
    """Add a reply-to address (its id is a request's `email_reply_to_id`)."""
    async with transaction(state.sessionmaker) as session:
        row = await senders.add_reply_to(
            session, state.redis, service_id, body.email_address, is_default=body.is_default
        )
        return ReplyToResponse.of(row)


@router.get("/services/{service_id}/reply-to")
async def list_reply_tos(service_id: uuid.UUID, state: StateDep) -> ReplyToListResponse:
    """List a service's reply-to addresses."""
    async with transaction(state.sessionmaker) as session:
        rows = await senders.list_reply_tos(session, service_id)
        return ReplyToListResponse(data=[ReplyToResponse.of(row) for row in rows])


@router.post("/services/{service_id}/sms-senders", status_code=201)
async def add_sms_sender(service_id: uuid.UUID, body: SmsSenderRequest, state: StateDep) -> SmsSenderResponse:
    """Add an SMS sender (its id is a request's `sms_sender_id`)."""
    async with transaction(state.sessionmaker) as session:
        row = await senders.add_sms_sender(
            session, state.redis, service_id, body.sms_sender, is_default=body.is_default
        )
        return SmsSenderResponse.of(row)


@router.get("/services/{service_id}/sms-senders")
async def list_sms_senders(service_id: uuid.UUID, state: StateDep) -> SmsSenderListResponse:
    """List a service's SMS senders."""
    async with transaction(state.sessionmaker) as session:
        rows = await senders.list_sms_senders(session, service_id)
        return SmsSenderListResponse(data=[SmsSenderResponse.of(row) for row in rows])
