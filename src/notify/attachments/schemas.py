"""What a file looks like in a request, and the metadata that replaces it in the stream and the database."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SendingMethod = Literal["attach", "link"]


class FileUpload(BaseModel):
    """A personalisation value carrying a file, as clients send it (GC Notify shape, GOV.UK client keys accepted)."""

    model_config = ConfigDict(extra="forbid")

    file: str
    filename: str | None = None
    sending_method: SendingMethod = "link"
    # Sent by notifications-python-client's prepare_upload; accepted for compatibility, not used.
    confirm_email_before_download: bool | None = None
    retention_period: str | None = None
    is_csv: bool | None = None


class AttachmentRef(BaseModel):
    """Where a stored file lives and how to send it: all the stream entry and the row ever hold of a file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    s3_key: str
    filename: str
    content_type: str
    size: int = Field(ge=0)
    sending_method: SendingMethod


def is_file(value: Any) -> bool:
    """Return True when a personalisation value is a file upload."""
    return isinstance(value, dict) and "file" in value


def is_ref(value: Any) -> bool:
    """Return True when a personalisation value is stored-attachment metadata."""
    return isinstance(value, dict) and "s3_key" in value
