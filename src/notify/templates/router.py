"""HTTP routes of /v2/template and /v2/templates."""

from __future__ import annotations

from fastapi import APIRouter, Request

from notify.dependencies import CallerDep, StateDep
from notify.http import JsonResponse
from notify.notifications.validation import parse_body
from notify.templates import reads
from notify.templates.schemas import PreviewRequest, PreviewResponse, TemplateListResponse, TemplateResponse

router = APIRouter(prefix="/v2", tags=["templates"])


@router.get("/template/{template_id}", response_model=TemplateResponse)
async def get_template(template_id: str, state: StateDep, caller: CallerDep) -> JsonResponse:
    """Get the current version of a template."""
    return JsonResponse((await reads.get_one(state, caller, template_id)).model_dump())


@router.get("/template/{template_id}/version/{version}", response_model=TemplateResponse)
async def get_template_version(template_id: str, version: str, state: StateDep, caller: CallerDep) -> JsonResponse:
    """Get one version of a template."""
    return JsonResponse((await reads.get_version(state, caller, template_id, version)).model_dump())


@router.get("/templates", response_model=TemplateListResponse)
async def list_templates(request: Request, state: StateDep, caller: CallerDep) -> JsonResponse:
    """List the service's templates, optionally of one type (`?type=email|sms`)."""
    response = await reads.list_all(state, caller, list(request.query_params.multi_items()))
    return JsonResponse(response.model_dump())


@router.post(
    "/template/{template_id}/preview",
    response_model=PreviewResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PreviewRequest.model_json_schema()}},
        }
    },
)
async def preview_template(template_id: str, request: Request, state: StateDep, caller: CallerDep) -> JsonResponse:
    """Render a template with personalisation, without sending anything."""
    body = parse_body(await request.body(), PreviewRequest)
    return JsonResponse((await reads.preview(state, caller, template_id, body)).model_dump())
