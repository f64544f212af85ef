"""Attachments on both sides of the stream: validate and store in the API, attach or link at delivery (DESIGN §2.8)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import math
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pydantic
import structlog
from botocore.exceptions import BotoCoreError, ClientError

from notify.attachments import sniff
from notify.attachments.schemas import AttachmentRef, FileUpload, is_file, is_ref
from notify.attachments.storage import AttachmentStorage
from notify.delivery.exceptions import PermanentProviderError, TransientProviderError
from notify.delivery.senders import AttachedFile, EmailMessage
from notify.errors import BadRequestError, ServiceUnavailableError, ValidationError
from notify.settings import LimitsSettings

log = structlog.get_logger(__name__)

# Room left in the SES message for headers and the text + HTML body once the files are counted.
_BODY_HEADROOM = 1024 * 1024
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class PendingFile:
    """A validated file waiting to be stored."""

    placeholder: str
    ref: AttachmentRef
    data: bytes


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request's personalisation split into what is kept, what is shown, and the files to store."""

    personalisation: dict[str, Any] | None
    display: dict[str, Any] | None
    files: tuple[PendingFile, ...] = ()


def contains_files(personalisation: Mapping[str, Any] | None) -> bool:
    """Return True when any personalisation value is a file (or file metadata)."""
    if not personalisation:
        return False
    return any(is_file(v) or is_ref(v) for v in personalisation.values())


def reject_files(personalisation: Mapping[str, Any] | None) -> None:
    """Raise 400 when personalisation carries files: only emails can send them."""
    if not contains_files(personalisation):
        return
    assert personalisation is not None
    names = [key for key, value in personalisation.items() if is_file(value) or is_ref(value)]
    raise BadRequestError(f"personalisation {', '.join(names)}: Files can only be sent by email")


def prepare(
    personalisation: dict[str, Any] | None,
    *,
    service_id: uuid.UUID,
    notification_id: uuid.UUID,
    limits: LimitsSettings,
) -> Prepared:
    """Validate every file in `personalisation` and replace it by its metadata; raise 400 on any problem."""
    if not personalisation or not any(isinstance(v, dict) for v in personalisation.values()):
        return Prepared(personalisation, personalisation)
    count = sum(1 for value in personalisation.values() if is_file(value))
    if count > limits.attachments_max_count:
        raise ValidationError(
            [f"personalisation: At most {limits.attachments_max_count} files can be sent with one email"]
        )
    errors: list[str] = []
    files: list[PendingFile] = []
    kept: dict[str, Any] = {}
    display: dict[str, Any] = {}
    for key, value in personalisation.items():
        if is_ref(value) and not is_file(value):
            errors.append(f"personalisation {key}: Additional properties are not allowed (s3_key was unexpected)")
        elif is_file(value):
            pending = _validate_file(key, value, service_id, notification_id, limits, errors)
            if pending is not None:
                files.append(pending)
                kept[key] = pending.ref.model_dump()
                # The 201 body and the stored body show the filename where the file goes (DESIGN §2.8).
                display[key] = pending.ref.filename
            continue
        kept[key] = display[key] = value
    encoded = sum(_mime_size(f.ref.size) for f in files if f.ref.sending_method == "attach")
    if encoded + _BODY_HEADROOM > limits.email_max_bytes:
        errors.append(
            f"personalisation: Attached files are too large for one email "
            f"(at most {(limits.email_max_bytes - _BODY_HEADROOM) / _MB:.0f} MB once encoded)"
        )
    if errors:
        raise ValidationError(errors)
    return Prepared(kept, display, tuple(files))


def _validate_file(
    key: str,
    value: dict[str, Any],
    service_id: uuid.UUID,
    notification_id: uuid.UUID,
    limits: LimitsSettings,
    errors: list[str],
) -> PendingFile | None:
    field = f"personalisation {key}"
    try:
        upload = FileUpload.model_validate(value)
    except pydantic.ValidationError as exc:
        for error in exc.errors():
            where = " ".join(str(p) for p in error["loc"])
            errors.append(f"{field}: {where} {error['msg']}".rstrip())
        return None
    max_mb = f"{limits.attachment_max_bytes / _MB:g}"
    # Refuse oversized files before decoding them: base64 is 4 characters per 3 bytes.
    if len(upload.file) // 4 * 3 > limits.attachment_max_bytes + 3:
        errors.append(f"{field}: File is larger than {max_mb} MB")
        return None
    try:
        data = base64.b64decode("".join(upload.file.split()), validate=True)
    except (binascii.Error, ValueError):
        errors.append(f"{field}: File is not valid base64")
        return None
    problem = _file_problem(upload, data, limits, max_mb)
    if problem:
        errors.append(f"{field}: {problem}")
        return None
    content_type = sniff.content_type(data, upload.filename)
    if content_type is None or content_type not in limits.attachment_types:
        errors.append(f"{field}: File type is not allowed")
        return None
    filename = upload.filename or _slug(key) + sniff.EXTENSIONS.get(content_type, "")
    ref = AttachmentRef(
        s3_key=f"{service_id}/{notification_id}/{_slug(key)}/{filename}",
        filename=filename,
        content_type=content_type,
        size=len(data),
        sending_method=upload.sending_method,
    )
    return PendingFile(key, ref, data)


def _file_problem(upload: FileUpload, data: bytes, limits: LimitsSettings, max_mb: str) -> str | None:
    if not data:
        return "File is empty"
    if len(data) > limits.attachment_max_bytes:
        return f"File is larger than {max_mb} MB"
    if upload.filename is None:
        return "filename is required when sending_method is attach" if upload.sending_method == "attach" else None
    if not 3 <= len(upload.filename) <= 255:
        return "filename must be between 3 and 255 characters"
    if any(c in upload.filename for c in "/\\") or not upload.filename.isprintable():
        return "filename must not contain path separators or control characters"
    return None


def _slug(placeholder: str) -> str:
    return _KEY_UNSAFE.sub("_", placeholder).strip("._") or "file"


def _mime_size(size: int) -> int:
    """Return the bytes a file takes in a MIME message: base64 in 76-character lines ending CRLF."""
    return math.ceil(size / 57) * 78


@asynccontextmanager
async def stored(
    storage: AttachmentStorage | None, files: Sequence[PendingFile], retry_after_s: int
) -> AsyncIterator[None]:
    """Upload the files before the body runs (the XADD); delete them again if the body fails."""
    if not files:
        yield
        return
    if storage is None:
        raise ServiceUnavailableError("Attachments are not available: try again later", retry_after_s=retry_after_s)
    results = await asyncio.gather(
        *(storage.put(f.ref.s3_key, f.data, f.ref.content_type) for f in files), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        await discard(storage, files)
        log.error("notify.attachments.store_failed", error=type(failures[0]).__name__, files=len(files))
        raise ServiceUnavailableError(
            "Attachments could not be stored, the notification was not accepted: try again",
            retry_after_s=retry_after_s,
        ) from failures[0]
    try:
        yield
    except BaseException:
        await discard(storage, files)
        raise


async def discard(storage: AttachmentStorage, files: Sequence[PendingFile]) -> None:
    """Delete uploaded files of a notification that was not accepted; log (never raise) when S3 refuses."""
    try:
        await storage.delete([f.ref.s3_key for f in files])
    except (ClientError, BotoCoreError, OSError) as exc:
        log.error("notify.attachments.discard_failed", error=type(exc).__name__, keys=[f.ref.s3_key for f in files])


async def delete_for_notifications(s3: AttachmentStorage, keys: Sequence[str]) -> int:
    """Delete the attachment objects of deleted notifications (DeleteObjects, 1,000 keys a call); return the count."""
    deleted = await s3.delete(list(keys))
    if deleted:
        log.info("notify.attachments.deleted", count=deleted)
    return deleted


async def for_delivery(
    storage: AttachmentStorage | None,
    *,
    service_id: uuid.UUID,
    notification_id: uuid.UUID,
    personalisation: dict[str, Any] | None,
    link_expiry_s: int,
) -> tuple[dict[str, Any], tuple[AttachmentRef, ...]]:
    """Return the personalisation to render (links become pre-signed URLs) and the files to attach."""
    if not personalisation or not any(is_ref(v) for v in personalisation.values()):
        return personalisation or {}, ()
    if storage is None:
        raise RuntimeError("This process has no attachment storage")
    prefix = f"{service_id}/{notification_id}/"
    values: dict[str, Any] = {}
    attach: list[AttachmentRef] = []
    for key, value in personalisation.items():
        ref = _ref(value) if is_ref(value) else None
        if ref is None or not ref.s3_key.startswith(prefix):
            # Only the API writes metadata, under this notification's own prefix: anything else is not a file.
            values[key] = "" if is_ref(value) else value
            continue
        if ref.sending_method == "link":
            values[key] = await storage.presign(ref.s3_key, ref.filename, link_expiry_s)
        else:
            values[key] = ref.filename
            attach.append(ref)
    return values, tuple(attach)


def _ref(value: Any) -> AttachmentRef | None:
    try:
        return AttachmentRef.model_validate(value)
    except pydantic.ValidationError:
        log.warning("notify.attachments.bad_metadata")
        return None


async def attach_files(storage: AttachmentStorage | None, message: EmailMessage) -> EmailMessage:
    """Fetch the message's attachments from S3; a missing object is permanent, any other S3 error transient."""
    if not message.attachment_refs:
        return message
    if storage is None:
        raise TransientProviderError("This worker has no attachment storage")
    return dataclasses.replace(message, files=tuple([await _fetch(storage, ref) for ref in message.attachment_refs]))


async def _fetch(storage: AttachmentStorage, ref: AttachmentRef) -> AttachedFile:
    try:
        data = await storage.get(ref.s3_key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
        if code in _MISSING_CODES:
            raise PermanentProviderError(f"Attachment not found: {ref.filename}") from exc
        raise TransientProviderError(f"S3 {code} fetching attachment {ref.filename}") from exc
    except (BotoCoreError, OSError) as exc:
        raise TransientProviderError(f"S3 {type(exc).__name__} fetching attachment {ref.filename}") from exc
    return AttachedFile(filename=ref.filename, content_type=ref.content_type, data=data)
