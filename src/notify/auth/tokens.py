"""HS256 JWT checks for the hot path, without PyJWT's generic decode (DESIGN §10: ~30 % of API CPU).

Only what Notify clients send is accepted: a compact JWS with `alg` HS256. The equivalence with PyJWT is
tested in tests/auth/test_tokens.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson


class InvalidTokenError(ValueError):
    """The token is not a well-formed HS256 JWT."""


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A decoded but not yet verified token."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    def signed_with(self, secret: str) -> bool:
        """Return whether the signature was made with `secret` (constant-time comparison)."""
        expected = hmac.new(secret.encode(), self.signing_input, hashlib.sha256).digest()
        return hmac.compare_digest(expected, self.signature)


def _b64decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidTokenError("bad base64") from exc


def parse(token: str) -> ParsedToken:
    """Split and decode a compact JWS; raise InvalidTokenError when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidTokenError("not three segments")
    header_segment, claims_segment, signature_segment = parts
    try:
        header = orjson.loads(_b64decode(header_segment))
        claims = orjson.loads(_b64decode(claims_segment))
    except orjson.JSONDecodeError as exc:
        raise InvalidTokenError("bad JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidTokenError("header and claims must be objects")
    return ParsedToken(
        header=header,
        claims=claims,
        signing_input=f"{header_segment}.{claims_segment}".encode(),
        signature=_b64decode(signature_segment),
    )
