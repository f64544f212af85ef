"""The hot routes without FastAPI's routing and dependency layers (DESIGN §10: they cost ~40 % of API CPU).

POST /v2/notifications/email and /sms are served here by a small ASGI middleware that does exactly what the
FastAPI routes do — authenticate, honour Idempotency-Key, validate, accept — through the same functions.
The FastAPI routes stay: they document the API and serve when `NOTIFY_API__FAST_LANE` is off, and
tests/notifications/test_fast_lane.py checks that both paths answer alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from notify.auth.service import Caller, authenticate
from notify.errors import NotifyError, error_body
from notify.http import JsonResponse
from notify.idempotency import service as idempotency
from notify.notifications import service, validation
from notify.notifications.schemas import PostEmailRequest, PostSmsRequest
from notify.state import ApiState

log = structlog.get_logger(__name__)


_BASE_URLS: dict[tuple[Any, ...], str] = {}
_BASE_URLS_MAX = 64  # the Host header is the client's to choose: keep only a few


def base_url(request: Request) -> str:
    """`str(request.base_url)`, remembered per scheme, server, root path and Host (Starlette rebuilds it: ~7 µs)."""
    scope = request.scope
    key = (
        scope.get("scheme"),
        scope.get("server"),
        scope.get("app_root_path", scope.get("root_path", "")),
        request.headers.get("host"),
    )
    url = _BASE_URLS.get(key)
    if url is None:
        url = str(request.base_url)
        if len(_BASE_URLS) >= _BASE_URLS_MAX:
            _BASE_URLS.clear()
        _BASE_URLS[key] = url
    return url


async def post_email(state: ApiState, caller: Caller, request: Request) -> Response:
    """Accept one email: the handler both paths share."""
    raw = await request.body()

    async def send() -> Response:
        body = validation.parse_body(raw, PostEmailRequest)
        return JsonResponse(await service.accept_email(state, caller, body, base_url(request)), status_code=201)

    return await idempotency.guard(state.redis, state.settings, caller.service.id, request, raw, send)


async def post_sms(state: ApiState, caller: Caller, request: Request) -> Response:
    """Accept one text message: the handler both paths share."""
    raw = await request.body()

    async def send() -> Response:
        body = validation.parse_body(raw, PostSmsRequest)
        return JsonResponse(await service.accept_sms(state, caller, body, base_url(request)), status_code=201)

    return await idempotency.guard(state.redis, state.settings, caller.service.id, request, raw, send)


Handler = Callable[[ApiState, Caller, Request], Awaitable[Response]]


class _Route(NamedTuple):
    """What the metrics middleware reads from `scope["route"]`."""

    path: str


HOT_ROUTES: dict[str, tuple[_Route, Handler]] = {
    "/v2/notifications/email": (_Route("/v2/notifications/email"), post_email),
    "/v2/notifications/sms": (_Route("/v2/notifications/sms"), post_sms),
}


class FastLaneMiddleware:
    """Serve the hot POST routes directly; pass everything else on to FastAPI."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle a hot route, or delegate."""
        hot = HOT_ROUTES.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if hot is None:
            await self.app(scope, receive, send)
            return
        route, handler = hot
        scope["route"] = route
        request = Request(scope, receive)
        state = scope["app"].state.notify
        try:
            caller = await authenticate(
                request.headers.get("authorization"), state.services, state.settings.api.jwt_leeway_s
            )
            response = await handler(state, caller, request)
        except NotifyError as exc:
            response = JsonResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)
        except Exception as exc:
            log.exception("notify.api.unhandled_error", error_type=type(exc).__name__)
            response = JsonResponse(error_body(500, [("Exception", "Internal server error")]), status_code=500)
        await response(scope, receive, send)
