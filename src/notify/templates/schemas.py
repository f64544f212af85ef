"""Request and response bodies of the v2 template API (GC Notify's `Template.serialize`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Placeholder(BaseModel):
    """What a placeholder needs."""

    required: bool = True


class TemplateResponse(BaseModel):
    """GET /v2/template/{id} and each item of GET /v2/templates."""

    id: str
    type: str
    created_at: str
    updated_at: str | None
    created_by: str | None
    version: int
    body: str
    subject: str | None
    name: str
    personalisation: dict[str, Placeholder]
    postage: None = None


class TemplateListResponse(BaseModel):
    """GET /v2/templates."""

    templates: list[TemplateResponse]


class PreviewRequest(BaseModel):
    """POST /v2/template/{id}/preview."""

    model_config = ConfigDict(extra="forbid")

    personalisation: dict[str, Any]


class PreviewResponse(BaseModel):
    """200 body of POST /v2/template/{id}/preview."""

    id: str
    type: str
    version: int
    body: str
    html: str | None
    subject: str | None
    postage: None = None
