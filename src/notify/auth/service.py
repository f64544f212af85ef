"""Authenticate a request's `Authorization` header (DESIGN §4.2)."""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass

import jwt

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
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthError("Invalid token: signature, api token is not valid") from exc
    if header.get("alg") != "HS256":
        raise AuthError("Invalid token: algorithm used is not HS256")
    issuer = claims.get("iss")
    if not issuer:
        raise AuthError("Invalid token: iss field not provided")
    issued_at = claims.get("iat")
    if not isinstance(issued_at, int | float):
        raise AuthError("Invalid token: iat field not provided")
    if abs(time.time() - issued_at) > leeway_s:
        raise AuthError(f"Error: Your system clock must be accurate to within {leeway_s} seconds")
    try:
        service_id = uuid.UUID(str(issuer))
    except ValueError as exc:
        raise AuthError("Invalid token: service id is not the right data type") from exc
    service = await _active_service(service_id, services)
    for key in service.keys:
        try:
            jwt.decode(token, key.secret, algorithms=["HS256"], options={"verify_iat": False})
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            raise AuthError("Invalid token: signature, api token is not valid") from exc
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
