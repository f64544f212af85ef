"""The FastAPI application factory and its lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from notify import sentry
from notify.admin.router import router as admin_router
from notify.attachments.storage import AttachmentStorage
from notify.auth.keys import SecretBox
from notify.cache import listen_for_invalidations
from notify.db import create_engine, create_sessionmaker
from notify.errors import NotifyError, error_body
from notify.http import JsonResponse
from notify.http_protocol import uvicorn_http
from notify.inbox import streams
from notify.jobs.router import router as jobs_router
from notify.metrics import RequestMetricsMiddleware
from notify.notifications.fastlane import FastLaneMiddleware
from notify.notifications.router import router as notifications_router
from notify.ops import docs as ops_docs
from notify.ops import heap
from notify.ops.router import router as ops_router
from notify.redis import CommandBatcher, create_redis
from notify.services.service import ServiceDirectory
from notify.settings import Settings
from notify.state import ApiState
from notify.templates.router import router as templates_router
from notify.templates.service import TemplateDirectory

log = structlog.get_logger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """Build the API for these settings; pools and clients live for the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sentry.init_sentry(settings, "api")
        engine = create_engine(settings.db, application_name="notify.api")
        sessionmaker = create_sessionmaker(engine)
        redis = create_redis(settings.redis, client_name="notify.api")
        batcher = CommandBatcher(redis) if settings.redis.batch_commands else None
        ttl = settings.api.cache_ttl_s
        state = ApiState(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            redis=redis,
            commands=batcher or redis,
            services=ServiceDirectory(sessionmaker, SecretBox(settings.api.secret_key.get_secret_value()), ttl),
            templates=TemplateDirectory(sessionmaker, ttl),
            s3=AttachmentStorage(settings.aws),
        )
        app.state.notify = state
        try:
            await streams.ensure_groups(redis)
        except Exception as exc:  # Redis may be down at boot; the API answers 503 until it is back.
            log.warning("notify.api.ensure_groups_failed", error=str(exc))
        stop_listening = asyncio.Event()
        listener = asyncio.create_task(listen_for_invalidations(redis, state.invalidate, stop_listening))
        heap.tune_collector()
        try:
            yield
        finally:
            stop_listening.set()
            try:
                await asyncio.wait_for(listener, timeout=5)
            except TimeoutError:
                log.warning("notify.api.listener_stop_timeout")
            if state.s3 is not None:
                await state.s3.aclose()
            if batcher is not None:
                await batcher.aclose()
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="notify",
        version="0.1.0",
        description="Email and SMS notifications, compatible with the GOV.UK Notify / GC Notify v2 API.",
        lifespan=lifespan,
        default_response_class=JsonResponse,
        docs_url=None,  # served by notify.ops.docs from local assets, with no CDN
        redoc_url=None,
        # notify exports Prometheus metrics (notify.metrics), not OpenTelemetry: without this FastAPI asks
        # OpenTelemetry for its providers on every request (~2 % of the API's CPU under load).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    if settings.api.fast_lane:
        app.add_middleware(FastLaneMiddleware)
    app.add_middleware(RequestMetricsMiddleware)  # added last: outermost, so it times the fast lane too
    ops_docs.install(app)
    app.include_router(admin_router)
    app.include_router(jobs_router)
    app.include_router(notifications_router)
    app.include_router(ops_router)
    app.include_router(templates_router)
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotifyError)
    async def notify_error(_: Request, exc: NotifyError) -> JsonResponse:
        return JsonResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def request_validation_error(_: Request, exc: RequestValidationError) -> JsonResponse:
        messages = [f"{' '.join(str(p) for p in e['loc'][1:])} {e['msg']}".strip() for e in exc.errors()]
        return JsonResponse(error_body(400, [("ValidationError", m) for m in messages]), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JsonResponse:
        error = "NoResultFound" if exc.status_code == 404 else "HTTPError"
        return JsonResponse(error_body(exc.status_code, [(error, str(exc.detail))]), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected_error(_: Request, exc: Exception) -> JsonResponse:
        log.exception("notify.api.unhandled_error", error_type=type(exc).__name__)
        return JsonResponse(error_body(500, [("Exception", "Internal server error")]), status_code=500)


def local_server(settings: Settings, port: int) -> uvicorn.Server:
    """Return a uvicorn server for the API on 127.0.0.1:`port`, in this process (`notify dev`, tests)."""
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        http=uvicorn_http(settings.api.coalesce_writes),
        log_level="warning",
        lifespan="on",
    )
    return uvicorn.Server(config)
