"""Replay the first response of a POST retried with the same `Idempotency-Key` (same service, 24 h).

One Redis key per (service, Idempotency-Key) holds either a claim (`P` + fingerprint, short TTL) while the
first request runs, or its response (`R` + fingerprint + status + body, 24 h). The claim is taken with
SET NX, so of two concurrent duplicates exactly one runs; the other gets 409 ConflictError with Retry-After
rather than waiting, since the clients that matter retry on their own. Only 2xx responses are stored: after an
error (4xx or 5xx, where nothing was accepted) the claim is released so a corrected or later retry can run.
The fingerprint (method, path and a hash of the body) stops a key from being reused for a different request.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.requests import Request
from starlette.responses import Response

from notify.errors import ServiceUnavailableError, ValidationError
from notify.idempotency.exceptions import IdempotencyConflictError, IdempotencyMismatchError
from notify.settings import Settings

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255
_CLAIM = b"P"
_RESULT = b"R"
_FINGERPRINT_LENGTH = 32

log = structlog.get_logger(__name__)


def redis_key(service_id: uuid.UUID, idempotency_key: str) -> str:
    """Return the Redis key of one service's Idempotency-Key (hashed: clients choose its content)."""
    return f"idempotency:{{{service_id}}}:{hashlib.sha256(idempotency_key.encode()).hexdigest()}"


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    """Return what identifies a request, to spot a key reused for a different one."""
    digest = hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()
    return digest[:_FINGERPRINT_LENGTH].encode()


def _unavailable(settings: Settings, exc: Exception) -> ServiceUnavailableError:
    log.error("notify.api.redis_unavailable", error=type(exc).__name__)
    return ServiceUnavailableError(
        "Service temporarily unavailable, the notification was not accepted: try again",
        retry_after_s=settings.redis.retry_after_s,
    )


async def _claim(redis: Redis, key: str, claim: bytes, lock_s: int) -> bytes | None:
    """Claim the key; return None when claimed, else what it holds (a claim or a stored response)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, claim, nx=True, ex=lock_s)
        pipe.get(key)
        claimed, current = await pipe.execute()
    if claimed:
        return None
    return bytes(current) if current is not None else b""


def _replay(stored: bytes, wanted: bytes) -> Response:
    if stored.startswith(_CLAIM):
        if stored[1 : 1 + _FINGERPRINT_LENGTH] != wanted:
            raise IdempotencyMismatchError("This Idempotency-Key was already used for a different request")
        raise IdempotencyConflictError()
    if stored[1 : 1 + _FINGERPRINT_LENGTH] != wanted:
        raise IdempotencyMismatchError("This Idempotency-Key was already used for a different request")
    rest = stored[1 + _FINGERPRINT_LENGTH :]
    status_code, body = int(rest[:3]), rest[3:]
    return Response(
        body, status_code=status_code, media_type="application/json", headers={"Idempotent-Replayed": "true"}
    )


async def guard(
    redis: Redis,
    settings: Settings,
    service_id: uuid.UUID,
    request: Request,
    body: bytes,
    handler: Callable[[], Awaitable[Response]],
) -> Response:
    """Run `handler` once per Idempotency-Key: replay its stored response for retries (no header: just run)."""
    idempotency_key = request.headers.get(HEADER)
    if idempotency_key is None:
        return await handler()
    if not 0 < len(idempotency_key) <= MAX_KEY_LENGTH:
        raise ValidationError([f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters"])
    key = redis_key(service_id, idempotency_key)
    wanted = fingerprint(request.method, request.url.path, body)
    try:
        stored = await _claim(redis, key, _CLAIM + wanted, settings.api.idempotency_lock_s)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise _unavailable(settings, exc) from exc
    if stored is not None:
        if stored:
            log.info("notify.api.idempotent_replay", service_id=str(service_id))
            return _replay(stored, wanted)
        # The claim expired between SET NX and GET: treat like an in-flight duplicate.
        raise IdempotencyConflictError()
    try:
        response = await handler()
    except BaseException:
        await _release(redis, key)
        raise
    if not 200 <= response.status_code < 300:
        await _release(redis, key)
        return response
    record = _RESULT + wanted + str(response.status_code).encode() + bytes(response.body)
    try:
        await redis.set(key, record, ex=settings.api.idempotency_ttl_s)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        # The notification is accepted already; a retry will meet the claim (409) until it expires.
        log.warning("notify.api.idempotency_store_failed", error=type(exc).__name__)
    return response


async def _release(redis: Redis, key: str) -> None:
    try:
        await redis.delete(key)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        log.warning("notify.api.idempotency_release_failed", error=type(exc).__name__)
