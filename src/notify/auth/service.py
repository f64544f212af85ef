"""Authenticate a request's `Authorization` header (DESIGN §4.2)."""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass

from notify.auth import tokens
from notify.auth.keys import parse_key
from notify.errors import AuthError
from notify.services.context import KeyContext, ServiceContext
from notify.services.service import ServiceDirectory


@dataclass(frozen=True, slots=True)
class Caller:
    """The service and key a request was made with."""

    service: ServiceContext
    key: KeyContext


def _unauthorized(message: str) -> AuthError:
    return AuthError(message, status_code=401)


async def authenticate(header: str | None, services: ServiceDirectory, leeway_s: int) -> Caller:
    """Return the caller for a `Bearer <JWT>` or `ApiKey-v1 <key>` header, or raise AuthError (401/403)."""
    if not header or not header.strip():
        raise _unauthorized("Unauthorized, authentication token must be provided")
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return await _authenticate_jwt(credentials, services, leeway_s)
    if scheme.lower() == "apikey-v1" and credentials:
        return await _authenticate_api_key(credentials, services)
    raise _unauthorized(
        "Unauthorized, Authorization header is invalid. Supported methods: Bearer <JWT>, ApiKey-v1 <key>"
    )


async def _active_service(service_id: uuid.UUID, services: ServiceDirectory) -> ServiceContext:
    service = await services.get(service_id)
    if service is None:
        raise AuthError("Invalid token: service not found")
    if not service.active:
        raise AuthError("Service is suspended")
    return service


async def _authenticate_jwt(token: str, services: ServiceDirectory, leeway_s: int) -> Caller:
    try:
        parsed = tokens.parse(token)
    except tokens.InvalidTokenError as exc:
        raise AuthError("Invalid token: signature, api token is not valid") from exc
    if parsed.header.get("alg") != "HS256":
        raise AuthError("Invalid token: algorithm used is not HS256")
    claims = parsed.claims
    issuer = claims.get("iss")
    if not issuer:
        raise AuthError("Invalid token: iss field not provided")
    issued_at = claims.get("iat")
    if not isinstance(issued_at, int | float) or isinstance(issued_at, bool):
        raise AuthError("Invalid token: iat field not provided")
    now = time.time()
    if abs(now - issued_at) > leeway_s:
        raise AuthError(f"Error: Your system clock must be accurate to within {leeway_s} seconds")
    expires = claims.get("exp")
    if expires is not None and (not isinstance(expires, int | float) or now > expires + leeway_s):
        raise AuthError("Invalid token: expired, check that your system clock is accurate")
    try:
        service_id = uuid.UUID(str(issuer))
    except ValueError as exc:
        raise AuthError("Invalid token: service id is not the right data type") from exc
    service = await _active_service(service_id, services)
    for key in service.keys:
        if parsed.signed_with(key.secret):
            return Caller(service=service, key=key)
    raise AuthError("Invalid token: API key not found")


async def _authenticate_api_key(key_string: str, services: ServiceDirectory) -> Caller:
    parsed = parse_key(key_string)
    if parsed is None:
        raise AuthError("Invalid token: Enter your full API key")
    service = await _active_service(parsed.service_id, services)
    for key in service.keys:
        if hmac.compare_digest(key.secret, parsed.secret):
            return Caller(service=service, key=key)
    raise AuthError("Invalid token: API key not found")
