"""Interactive API docs that work with no internet, and the finishing touches of the OpenAPI document.

Swagger UI and ReDoc are served from the assets shipped in the `fastapi-offline` wheel, mounted at
`/docs-assets`, so `/docs` and `/redoc` load nothing from a CDN (air-gapped deployments, `notify dev` on a train).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse

ASSETS_PATH = "/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"

BEARER = "bearerAuth"
API_KEY = "apiKeyAuth"
ADMIN = "adminBearerAuth"

SECURITY_SCHEMES: dict[str, Any] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "A JWT signed with HS256 using the secret of one of the service's API keys (the last 36 characters of "
            "the key), with claims `iss` = the service id and `iat` = now (accepted within 30 s of server time). "
            "This is what the Notify client libraries send."
        ),
    },
    API_KEY: {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "The whole API key, sent as `Authorization: ApiKey-v1 <key>`. Type `ApiKey-v1 ` then the key.",
    },
    ADMIN: {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "The operator's admin token (`NOTIFY_API__ADMIN_TOKEN`), sent as `Authorization: Bearer <token>`. "
            "With no token configured every /admin route answers 404."
        ),
    },
}

TAGS: list[dict[str, str]] = [
    {
        "name": "notifications",
        "description": (
            "Send email and text messages and read their status (GOV.UK Notify / GC Notify v2 protocol). "
            "A POST answers 201 once the notification is safely in Redis; it is readable with GET once saved "
            "(usually within a second)."
        ),
    },
    {"name": "templates", "description": "Read a service's templates and preview them with personalisation."},
    {"name": "jobs", "description": "Bulk sending: one job of many rows, and its progress."},
    {"name": "operations", "description": "Liveness, readiness and Prometheus metrics; no authentication."},
    {
        "name": "admin",
        "description": (
            "Manage services, API keys, templates, safelists, callbacks, reply-to addresses and SMS senders "
            "(what `notify admin` does). Needs the admin token; not part of the Notify protocol."
        ),
    },
]

ADMIN_ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Bad request: validation failed, or the change is not allowed.",
    401: "No credentials: the `Authorization` header is missing.",
    403: "The admin token is wrong.",
    404: "No such service, key or template, or the admin API is disabled (no admin token configured).",
}

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Bad request: validation failed, unknown template, missing personalisation, bad recipient.",
    401: "No credentials: the `Authorization` header is missing.",
    403: "Bad, expired or revoked credentials, or a service not allowed to do this.",
    404: "Nothing with that id for this service (a new notification is 404 until it is saved).",
    429: "A rate limit or the service's daily limit was reached.",
    503: "A backing server is unavailable; nothing was accepted. Retry after the `Retry-After` seconds.",
}

REQUEST_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("/v2/notifications/email", "post"): {
        "minimal": {
            "summary": "An email from a template",
            "value": {
                "email_address": "ada@example.com",
                "template_id": "f33517ff-2a88-4f6e-b855-c550268ce08a",
                "personalisation": {"name": "Ada", "code": "1234"},
                "reference": "your-reference-123",
            },
        }
    },
    ("/v2/notifications/sms", "post"): {
        "minimal": {
            "summary": "A text message from a template",
            "value": {
                "phone_number": "+16135550123",
                "template_id": "df10a23e-2c6d-4ea5-87fb-82e520cbf93c",
                "personalisation": {"code": "5678"},
                "reference": "your-reference-456",
            },
        }
    },
}


class ErrorItem(BaseModel):
    """One error of a v2 error body."""

    error: str = Field(examples=["BadRequestError"])
    message: str = Field(examples=["Template not found"])


class ErrorResponse(BaseModel):
    """The v2 error body every error uses."""

    status_code: int = Field(examples=[400])
    errors: list[ErrorItem]


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """Generate the OpenAPI document, with auth, tags, examples and the v2 error responses added."""
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=TAGS
    )
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    components.setdefault("schemas", {})["ErrorResponse"] = ErrorResponse.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    defs = components["schemas"]["ErrorResponse"].pop("$defs", {})
    components["schemas"].update(defs)
    security: list[dict[str, list[str]]]
    for path, operations in schema.get("paths", {}).items():
        if path.startswith("/v2/"):
            security, errors = [{BEARER: []}, {API_KEY: []}], ERROR_DESCRIPTIONS
        elif path.startswith("/admin/"):
            security, errors = [{ADMIN: []}], ADMIN_ERROR_DESCRIPTIONS
        else:
            continue
        for method, operation in operations.items():
            operation["security"] = security
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # Validation errors are 400 in the v2 protocol, never 422.
            for code, description in errors.items():
                responses.setdefault(
                    str(code),
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
                    },
                )
            examples = REQUEST_EXAMPLES.get((path, method))
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if examples and content is not None:
                content["examples"] = examples
    _drop_unused(components["schemas"], schema, ("HTTPValidationError", "ValidationError"))
    return schema


def _drop_unused(schemas: dict[str, Any], document: dict[str, Any], names: tuple[str, ...]) -> None:
    """Remove FastAPI's 422 schemas once no operation refers to them."""
    text = orjson.dumps(document).decode()
    for name in names:
        if f'"#/components/schemas/{name}"' not in text:
            schemas.pop(name, None)
            text = orjson.dumps(document).decode()


def install(app: FastAPI) -> None:
    """Serve `/docs`, `/redoc` and their assets locally, and the completed document at `/openapi.json`."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            # No badge from the public validator: it would call out to the internet.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
