"""Turn request bodies into clean values, with GC Notify's field-prefixed error messages."""

from __future__ import annotations

import functools
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
import phonenumbers
import pydantic
from email_validator import EmailNotValidError, validate_email

from notify.errors import BadRequestError, ValidationError

M = TypeVar("M", bound=pydantic.BaseModel)

_JSON_TYPES = {
    "string_type": "string",
    "dict_type": "object",
    "list_type": "array",
    "int_type": "integer",
    "bool_type": "boolean",
}


def parse_body(raw: bytes, model: type[M]) -> M:
    """Decode JSON and validate it against `model`, raising the v2 errors on failure."""
    try:
        data = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"Error decoding arguments: {exc}", error="BadRequestError") from exc
    if not isinstance(data, dict):
        raise ValidationError(["Request body must be a JSON object"])
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(_messages(exc)) from exc


def _messages(exc: pydantic.ValidationError) -> list[str]:
    messages: list[str] = []
    for error in exc.errors():
        field = " ".join(str(part) for part in error["loc"])
        kind = error["type"]
        if kind == "missing":
            message = f"{field} is a required property"
        elif kind == "extra_forbidden":
            message = f"Additional properties are not allowed ({field} was unexpected)"
        elif kind in _JSON_TYPES:
            message = f"{field} {orjson.dumps(error['input']).decode()[:100]} is not of type {_JSON_TYPES[kind]}"
        else:
            message = f"{field} {error['msg']}"
        if message not in messages:
            messages.append(message)
    return messages


def check_uuid(field: str, value: str) -> uuid.UUID:
    """Return `value` as a UUID or raise `<field> is not a valid UUID`."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError) as exc:
        raise ValidationError([f"{field} is not a valid UUID"]) from exc


# A plain dot-atom local part (RFC 5322) on an ASCII domain already accepted is valid without the full check.
_LOCAL_PART_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_MAX_LOCAL = 64
_MAX_ADDRESS = 254


def check_email(value: str) -> str:
    """Return the normalised email address or raise `email_address Not a valid email address`.

    email_validator spends most of its time on the domain, and senders repeat a few domains endlessly: each
    domain is checked once per process. Anything but a plain ASCII address takes the full check.
    """
    address = value.strip()
    local, at, domain = address.rpartition("@")
    if (
        at
        and len(local) <= _MAX_LOCAL
        and len(address) <= _MAX_ADDRESS
        and domain.isascii()
        and _LOCAL_PART_RE.match(local)
        and _domain_ok(domain.lower())
    ):
        return address.lower()
    return check_email_fully(address)


def check_email_fully(address: str) -> str:
    """Check an address with email_validator in full (the general path the cached check must agree with)."""
    try:
        return validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationError(["email_address Not a valid email address"]) from exc


@functools.lru_cache(maxsize=4096)
def _domain_ok(domain: str) -> bool:
    try:
        check_email_fully(f"a@{domain}")
    except ValidationError:
        return False
    return True


def check_phone(value: str) -> str:
    """Return the number in E.164 or raise `phone_number Not a valid international number`."""
    cleaned = value.strip()
    if cleaned and not cleaned.startswith("+"):
        cleaned = "+" + cleaned.lstrip("0")
    try:
        number = phonenumbers.parse(cleaned, None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(["phone_number Not a valid international number"]) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(["phone_number Not a valid international number"])
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_scheduled_for(value: str | None, now: datetime, max_hours: int = 96) -> datetime | None:
    """Parse `scheduled_for` (ISO 8601, UTC if naive); it may not be in the past or beyond `max_hours`."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(
            [
                "scheduled_for datetime format is invalid. It must be a valid ISO8601 date time format, "
                "https://en.wikipedia.org/wiki/ISO_8601"
            ]
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when < now - timedelta(minutes=1):
        raise ValidationError(["scheduled_for datetime cannot be in the past"])
    if when > now + timedelta(hours=max_hours):
        raise ValidationError([f"scheduled_for datetime can only be up to {max_hours} hours in the future"])
    return when


def check_personalisation_size(personalisation: dict[str, Any] | None, max_bytes: int) -> None:
    """Reject personalisation whose JSON is larger than `max_bytes` (GC Notify's wording)."""
    size = len(orjson.dumps(personalisation)) if personalisation else 0
    if size > max_bytes:
        raise ValidationError(
            [f"Personalisation variables size of {size} bytes is greater than allowed limit of {max_bytes} bytes."]
        )
