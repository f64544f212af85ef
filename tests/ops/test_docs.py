"""/docs and /redoc work with no internet, and /openapi.json documents auth, examples and the v2 errors."""

from __future__ import annotations

import re
from typing import Any

import pytest
from httpx import AsyncClient

V2_ERRORS = {"400", "401", "403", "404", "429", "503"}
ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.mark.parametrize(
    ("page", "expected_types"),
    [
        ("/docs", {"/docs-assets/swagger-ui-bundle.js": "javascript", "/docs-assets/swagger-ui.css": "text/css"}),
        ("/redoc", {"/docs-assets/redoc.standalone.js": "javascript"}),
    ],
)
async def test_docs_pages_use_only_local_assets_that_are_served(
    client: AsyncClient, page: str, expected_types: dict[str, str]
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"https?://", html), "the page must not load anything from another host"
    assets = set(ASSET.findall(html))
    assert set(expected_types) <= assets
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert served.content, asset
    for asset, content_type in expected_types.items():
        assert content_type in (await client.get(asset)).headers["content-type"]
    assert "image/png" in (await client.get("/docs-assets/favicon.png")).headers["content-type"]


async def test_swagger_ui_does_not_call_the_public_validator(client: AsyncClient) -> None:
    html = (await client.get("/docs")).text
    assert '"validatorUrl": null' in html
    assert "/openapi.json" in html


async def test_openapi_declares_both_auth_schemes(client: AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearerAuth"]["description"],
    }
    assert schemes["apiKeyAuth"]["type"] == "apiKey"
    assert schemes["apiKeyAuth"]["in"] == "header"
    assert schemes["apiKeyAuth"]["name"] == "Authorization"
    assert "ApiKey-v1 <key>" in schemes["apiKeyAuth"]["description"]
    assert {tag["name"] for tag in document["tags"]} >= {"notifications", "operations"}


async def test_every_v2_operation_has_auth_and_the_v2_error_responses(client: AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    v2 = [
        (path, method, operation)
        for path, operations in document["paths"].items()
        if path.startswith("/v2/")
        for method, operation in operations.items()
    ]
    assert len(v2) >= 4
    for path, method, operation in v2:
        assert operation["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}], (path, method)
        responses: dict[str, Any] = operation["responses"]
        assert set(responses) >= V2_ERRORS, (path, method)
        assert "422" not in responses, "validation errors are 400 in the v2 protocol"
        for code in V2_ERRORS:
            schema = responses[code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    error = document["components"]["schemas"]["ErrorResponse"]
    assert set(error["required"]) == {"status_code", "errors"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "/healthz" in document["paths"]
    assert "security" not in document["paths"]["/healthz"]["get"]


@pytest.mark.parametrize(
    ("path", "field"), [("/v2/notifications/email", "email_address"), ("/v2/notifications/sms", "phone_number")]
)
async def test_post_routes_have_request_examples(client: AsyncClient, path: str, field: str) -> None:
    document = (await client.get("/openapi.json")).json()
    content = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    example = next(iter(content["examples"].values()))["value"]
    assert field in example
    assert "template_id" in example
    assert content["schema"]["additionalProperties"] is False


async def test_the_error_response_schema_matches_a_real_error(client: AsyncClient) -> None:
    response = await client.post("/v2/notifications/email", json={})
    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"status_code", "errors"}
    assert set(body["errors"][0]) == {"error", "message"}
