"""GET /v2/template/{id}, /v2/template/{id}/version/{v}, /v2/templates and POST /v2/template/{id}/preview."""

from __future__ import annotations

import uuid

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.admin import service as admin
from notify.db import transaction
from notify.settings import Settings
from tests.factories import create_sample


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey-v1 {key}"}


async def test_get_template_serialises_like_gc_notify(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    response = await client.get(f"/v2/template/{sample.email_template_id}", headers=auth(sample.key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["created_at"].endswith("Z")
    assert body["updated_at"].endswith("Z")
    del body["created_at"], body["updated_at"]
    assert body == {
        "id": str(sample.email_template_id),
        "type": "email",
        "created_by": None,
        "version": 1,
        "body": "Hello ((name)), your code is ((code)).",
        "subject": "Code for ((name))",
        "name": "email",
        "personalisation": {"name": {"required": True}, "code": {"required": True}},
        "postage": None,
    }
    sms = (await client.get(f"/v2/template/{sample.sms_template_id}", headers=auth(sample.key))).json()
    assert sms["type"] == "sms"
    assert sms["subject"] is None
    assert sms["personalisation"] == {"code": {"required": True}}


async def test_get_template_version_returns_that_version(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    async with transaction(sessionmaker) as session:
        await admin.update_template(session, None, sample.sms_template_id, content="New ((thing))")
    old = await client.get(f"/v2/template/{sample.sms_template_id}/version/1", headers=auth(sample.key))
    new = await client.get(f"/v2/template/{sample.sms_template_id}/version/2", headers=auth(sample.key))
    current = await client.get(f"/v2/template/{sample.sms_template_id}", headers=auth(sample.key))
    missing = await client.get(f"/v2/template/{sample.sms_template_id}/version/3", headers=auth(sample.key))
    assert (old.json()["version"], old.json()["body"]) == (1, "Your code is ((code))")
    assert old.json()["personalisation"] == {"code": {"required": True}}
    assert (new.json()["version"], new.json()["body"]) == (2, "New ((thing))")
    assert current.json()["version"] == 2
    assert missing.status_code == 404


async def test_list_templates_filters_by_type_and_skips_archived(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    async with transaction(sessionmaker) as session:
        archived = await admin.create_template(
            session, sample.service_id, template_type="sms", name="old", content="old"
        )
        await admin.update_template(session, None, archived.id, archived=True)
    every = (await client.get("/v2/templates", headers=auth(sample.key))).json()
    emails = (await client.get("/v2/templates?type=email", headers=auth(sample.key))).json()
    sms = (await client.get("/v2/templates", params={"type": "sms"}, headers=auth(sample.key))).json()
    bad = await client.get("/v2/templates?type=letter", headers=auth(sample.key))
    unknown = await client.get("/v2/templates?colour=red", headers=auth(sample.key))
    assert sorted(t["id"] for t in every["templates"]) == sorted(
        [str(sample.email_template_id), str(sample.sms_template_id)]
    )
    assert [t["id"] for t in emails["templates"]] == [str(sample.email_template_id)]
    assert [t["id"] for t in sms["templates"]] == [str(sample.sms_template_id)]
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["error"] == "ValidationError"
    assert unknown.status_code == 400


async def test_preview_renders_email_with_html(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings, email_content="Hi **((name))**, code ((code))")
    response = await client.post(
        f"/v2/template/{sample.email_template_id}/preview",
        headers=auth(sample.key),
        json={"personalisation": {"name": "Ada", "code": "<b>1</b>"}},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": str(sample.email_template_id),
        "type": "email",
        "version": 1,
        "body": "Hi **Ada**, code <b>1</b>",
        "html": "<p>Hi <strong>Ada</strong>, code &lt;b&gt;1&lt;/b&gt;</p>\n",
        "subject": "Code for Ada",
        "postage": None,
    }
    sms = await client.post(
        f"/v2/template/{sample.sms_template_id}/preview",
        headers=auth(sample.key),
        json={"personalisation": {"code": "42"}},
    )
    assert sms.json() == {
        "id": str(sample.sms_template_id),
        "type": "sms",
        "version": 1,
        "body": "Your code is 42",
        "html": None,
        "subject": None,
        "postage": None,
    }


async def test_preview_with_missing_personalisation_is_400(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    response = await client.post(
        f"/v2/template/{sample.email_template_id}/preview", headers=auth(sample.key), json={"personalisation": {}}
    )
    no_body = await client.post(f"/v2/template/{sample.email_template_id}/preview", headers=auth(sample.key), json={})
    assert response.status_code == 400
    assert response.json() == {
        "status_code": 400,
        "errors": [{"error": "BadRequestError", "message": "Missing personalisation: name, code"}],
    }
    assert no_body.status_code == 400
    assert no_body.json()["errors"][0]["message"] == "personalisation is a required property"


async def test_templates_are_scoped_to_the_service(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    mine = await create_sample(sessionmaker, settings, name="Mine")
    theirs = await create_sample(sessionmaker, settings, name="Theirs")
    for path in (
        f"/v2/template/{theirs.email_template_id}",
        f"/v2/template/{theirs.email_template_id}/version/1",
        f"/v2/template/{uuid.uuid4()}",
    ):
        response = await client.get(path, headers=auth(mine.key))
        assert response.status_code == 404, path
        assert response.json() == {
            "status_code": 404,
            "errors": [{"error": "NoResultFound", "message": "No result found"}],
        }
    preview = await client.post(
        f"/v2/template/{theirs.sms_template_id}/preview", headers=auth(mine.key), json={"personalisation": {"code": 1}}
    )
    assert preview.status_code == 404
    listed = (await client.get("/v2/templates", headers=auth(mine.key))).json()["templates"]
    assert str(theirs.email_template_id) not in {t["id"] for t in listed}


async def test_bad_template_id_is_400(
    client: AsyncClient, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    sample = await create_sample(sessionmaker, settings)
    response = await client.get("/v2/template/not-a-uuid", headers=auth(sample.key))
    assert response.status_code == 400
    assert response.json() == {
        "status_code": 400,
        "errors": [{"error": "ValidationError", "message": "template_id is not a valid UUID"}],
    }
    unauthenticated = await client.get(f"/v2/template/{sample.email_template_id}")
    assert unauthenticated.status_code == 401
