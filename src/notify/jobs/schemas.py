"""Request and response bodies of bulk jobs (DESIGN §2.4, §4.1; GC Notify's JobSchema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class PostBulkRequest(BaseModel):
    """POST /v2/notifications/bulk: exactly one of `rows` (first row = headers) or `csv`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    template_id: str
    rows: list[list[Any]] | None = None
    csv: str | None = None
    reference: str | None = None
    scheduled_for: str | None = None
    reply_to_id: str | None = None


class ApiKeyRef(BaseModel):
    """The key a job was created with."""

    id: str | None
    name: str | None
    key_type: str


class ServiceName(BaseModel):
    """The service's name, as GC Notify nests it."""

    name: str


class StatusCount(BaseModel):
    """How many of a job's notifications have one status."""

    status: str
    count: int


class JobResponse(BaseModel):
    """One job (GC Notify's JobSchema, plus `rows_saved` progress and per-status `statistics`)."""

    id: str
    api_key: ApiKeyRef
    archived: bool = False
    created_at: str
    created_by: None = None
    job_status: str
    notification_count: int
    original_file_name: str
    processing_started: str | None
    processing_finished: str | None
    scheduled_for: str | None
    sender_id: str | None
    service: str
    service_name: ServiceName
    template: str
    template_version: int
    template_type: str
    updated_at: str | None
    reference: str | None
    rows_saved: int
    statistics: list[StatusCount] = []


class JobEnvelope(BaseModel):
    """`{"data": job}`."""

    data: JobResponse
