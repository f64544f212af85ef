"""/docs in a real headless Chromium that cannot reach the internet: it renders, and "Try it out" sends."""

from __future__ import annotations

import orjson
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.settings import Settings
from tests.factories import create_sample
from tests.live_server import live_server
from tests.ops.browser import authorize_api_key, chromium_or_skip, dump_dom, open_page, try_it_out

pytestmark = pytest.mark.timeout(240)

POST_EMAIL = "operations-notifications-post_email_v2_notifications_email_post"


async def test_swagger_ui_renders_every_operation_offline(settings: Settings) -> None:
    chromium_or_skip()
    with live_server(settings) as base_url:
        dom = await dump_dom(f"{base_url}/docs")
    assert 'class="swagger-ui"' in dom, "Swagger UI did not start: its assets did not load"
    for path in ("/v2/notifications/email", "/v2/notifications/sms", "/healthz"):
        assert f'data-path="{path}"' in dom, path
    assert "Authorize" in dom, "the security schemes are not shown"


async def test_redoc_renders_offline(settings: Settings) -> None:
    chromium_or_skip()
    with live_server(settings) as base_url:
        dom = await dump_dom(f"{base_url}/redoc")
    assert "/v2/notifications/email" in dom
    assert "apiKeyAuth" in dom, "the operations do not show their authorizations"


async def test_try_it_out_sends_an_email_from_the_docs_page(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    chromium_or_skip()
    sample = await create_sample(sessionmaker, settings)
    body = orjson.dumps(
        {
            "email_address": "ada@example.com",
            "template_id": str(sample.email_template_id),
            "personalisation": {"name": "Ada", "code": "4242"},
        }
    ).decode()
    with live_server(settings) as base_url:
        async with open_page(f"{base_url}/docs") as page:
            await page.wait_for("document.querySelectorAll('.opblock').length > 0")
            await authorize_api_key(page, "apiKeyAuth", f"ApiKey-v1 {sample.key}")
            status, shown = await try_it_out(page, POST_EMAIL, body)

    assert status.startswith("201"), shown
    assert "Hello Ada, your code is 4242." in shown
    assert await redis.xlen("inbox:email:normal") == 1
