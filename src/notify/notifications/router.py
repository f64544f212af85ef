"""HTTP routes of /v2/notifications."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from notify.dependencies import CallerDep, StateDep
from notify.http import JsonResponse
from notify.notifications import fastlane, reads
from notify.notifications.schemas import (
    NotificationListResponse,
    NotificationResponse,
    PostEmailRequest,
    PostNotificationResponse,
    PostSmsRequest,
)

router = APIRouter(prefix="/v2/notifications", tags=["notifications"])


def _body_schema(model: type[PostEmailRequest | PostSmsRequest]) -> dict[str, Any]:
    # The hot routes read the raw body themselves (FastAPI's body injection costs ~35 %, DESIGN §10);
    # this keeps the request schema in the OpenAPI document all the same.
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


@router.post(
    "/email", status_code=201, response_model=PostNotificationResponse, openapi_extra=_body_schema(PostEmailRequest)
)
async def post_email(request: Request, state: StateDep, caller: CallerDep) -> Response:
    """Send an email."""
    return await fastlane.post_email(state, caller, request)


@router.post(
    "/sms", status_code=201, response_model=PostNotificationResponse, openapi_extra=_body_schema(PostSmsRequest)
)
async def post_sms(request: Request, state: StateDep, caller: CallerDep) -> Response:
    """Send a text message."""
    return await fastlane.post_sms(state, caller, request)


@router.get("/{notification_id}", response_model=NotificationResponse)
async def get_notification(notification_id: str, request: Request, state: StateDep, caller: CallerDep) -> JsonResponse:
    """Get one notification by id (404 until it is saved)."""
    response = await reads.get_one(state, caller, notification_id, str(request.base_url))
    return JsonResponse(response.model_dump())


@router.get("", response_model=NotificationListResponse)
async def list_notifications(request: Request, state: StateDep, caller: CallerDep) -> JsonResponse:
    """List notifications, newest first, 250 a page."""
    response = await reads.list_page(state, caller, list(request.query_params.multi_items()), str(request.base_url))
    return JsonResponse(response.model_dump())
