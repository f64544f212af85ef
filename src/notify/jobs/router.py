"""HTTP routes of bulk jobs and cancellation: /v2/notifications/bulk, /v2/jobs, /v2/notifications/{id}/cancel."""

from __future__ import annotations

from fastapi import APIRouter, Request

from notify.dependencies import CallerDep, StateDep
from notify.http import JsonResponse
from notify.jobs import service
from notify.jobs.schemas import JobEnvelope, PostBulkRequest
from notify.notifications.schemas import NotificationResponse

router = APIRouter(tags=["jobs"])

_BULK_BODY = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": PostBulkRequest.model_json_schema()}}}
}


@router.post("/v2/notifications/bulk", status_code=201, response_model=JobEnvelope, openapi_extra=_BULK_BODY)
async def post_bulk(request: Request, state: StateDep, caller: CallerDep) -> JsonResponse:
    """Send one template to many recipients (a bulk job)."""
    body = service.parse_request(await request.body())
    job = await service.create_job(state, caller, body)
    return JsonResponse(JobEnvelope(data=job).model_dump(), status_code=201)


@router.get("/v2/jobs/{job_id}", response_model=JobEnvelope)
async def get_job(job_id: str, state: StateDep, caller: CallerDep) -> JsonResponse:
    """Get a bulk job's status, progress and per-status counts."""
    job = await service.get_job(state, caller, job_id)
    return JsonResponse(JobEnvelope(data=job).model_dump())


@router.post("/v2/jobs/{job_id}/cancel", response_model=JobEnvelope)
async def cancel_job(job_id: str, state: StateDep, caller: CallerDep) -> JsonResponse:
    """Cancel a bulk job that has not started."""
    job = await service.cancel_job(state, caller, job_id)
    return JsonResponse(JobEnvelope(data=job).model_dump())


@router.post("/v2/notifications/{notification_id}/cancel", response_model=NotificationResponse)
async def cancel_notification(
    notification_id: str, request: Request, state: StateDep, caller: CallerDep
) -> JsonResponse:
    """Cancel a scheduled notification that is not due yet."""
    response = await service.cancel_notification(state, caller, notification_id, str(request.base_url))
    return JsonResponse(response.model_dump())
