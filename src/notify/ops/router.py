"""Operational endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import text

from notify.dependencies import StateDep
from notify.http import JsonResponse
from notify.metrics import CONTENT_TYPE
from notify.ops import exporter

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Answer while the process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> JsonResponse:
    """Answer 200 when Redis and PostgreSQL are reachable, 503 otherwise."""
    checks: dict[str, str] = {}
    try:
        await state.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
async def prometheus_metrics(state: StateDep) -> Response:
    """Expose this process's Prometheus metrics; lane gauges are read from Redis at scrape time."""
    return Response(await exporter.scrape(state.redis), media_type=CONTENT_TYPE)
