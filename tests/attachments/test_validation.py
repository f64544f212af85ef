"""Every bad file is a 400 naming the field, and nothing reaches S3 or the stream (DESIGN §2.8)."""

from __future__ import annotations

import base64
import io
import zipfile
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.app import create_app
from notify.attachments import sniff
from notify.settings import Settings
from tests.attachments.conftest import bucket_keys
from tests.factories import create_sample

PDF = b"%PDF-1.4\nhello\n%%EOF\n"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _pdf(**overrides: Any) -> dict[str, Any]:
    return {"file": _b64(PDF), "filename": "report.pdf", "sending_method": "attach", **overrides}


CASES: list[tuple[str, Any, str]] = [
    ("bad base64", _pdf(file="not base64 at all!"), "personalisation doc: File is not valid base64"),
    ("empty", _pdf(file=""), "personalisation doc: File is empty"),
    (
        "too large",
        _pdf(file=_b64(b"%PDF" + b"\0" * (10 * 1024 * 1024))),
        "personalisation doc: File is larger than 10 MB",
    ),
    ("short name", _pdf(filename="ab"), "personalisation doc: filename must be between 3 and 255 characters"),
    (
        "long name",
        _pdf(filename="a" * 252 + ".pdf"),
        "personalisation doc: filename must be between 3 and 255 characters",
    ),
    (
        "path",
        _pdf(filename="../../etc/report.pdf"),
        "personalisation doc: filename must not contain path separators or control characters",
    ),
    (
        "backslash",
        _pdf(filename="C:\\report.pdf"),
        "personalisation doc: filename must not contain path separators or control characters",
    ),
    ("no name", _pdf(filename=None), "personalisation doc: filename is required when sending_method is attach"),
    ("binary", _pdf(file=_b64(b"MZ\x90\x00\x03\x00\x00\x00")), "personalisation doc: File type is not allowed"),
    ("latin-1 text", _pdf(file=_b64("café".encode("latin-1"))), "personalisation doc: File type is not allowed"),
    ("method", _pdf(sending_method="email"), "personalisation doc: sending_method Input should be 'attach' or 'link'"),
    ("extra key", _pdf(colour="red"), "personalisation doc: colour Extra inputs are not permitted"),
    (
        "forged metadata",
        {"s3_key": "other-service/x/doc/secret.pdf", "filename": "secret.pdf", "sending_method": "attach"},
        "personalisation doc: Additional properties are not allowed (s3_key was unexpected)",
    ),
]


async def _send(client: AsyncClient, key: str, template_id: str, personalisation: dict[str, Any]) -> Any:
    response = await client.post(
        "/v2/notifications/email",
        headers={"Authorization": f"ApiKey-v1 {key}"},
        json={"email_address": "ada@example.com", "template_id": template_id, "personalisation": personalisation},
    )
    assert response.status_code == 400, response.text
    return response.json()


@pytest.mark.parametrize(("value", "message"), [(v, m) for _, v, m in CASES], ids=[c[0] for c in CASES])
async def test_a_bad_file_is_a_400_and_nothing_is_stored(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: AsyncClient,
    redis: Redis,
    s3: Any,
    value: Any,
    message: str,
) -> None:
    sample = await create_sample(sessionmaker, settings, email_subject="Files", email_content="See ((doc))")
    body = await _send(client, sample.key, str(sample.email_template_id), {"doc": value})
    assert body == {"status_code": 400, "errors": [{"error": "ValidationError", "message": message}]}
    assert await bucket_keys(s3, settings) == []
    assert await redis.xlen("inbox:email:normal") == 0


async def test_more_than_ten_files_is_a_400(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], client: AsyncClient, redis: Redis, s3: Any
) -> None:
    sample = await create_sample(sessionmaker, settings, email_subject="Files", email_content="See ((f0))")
    files = {f"f{n}": _pdf(filename=f"file{n}.pdf") for n in range(11)}
    body = await _send(client, sample.key, str(sample.email_template_id), files)
    assert body["errors"] == [
        {"error": "ValidationError", "message": "personalisation: At most 10 files can be sent with one email"}
    ]
    assert await bucket_keys(s3, settings) == []
    assert await redis.xlen("inbox:email:normal") == 0


async def test_files_too_large_for_one_ses_message_are_a_400_but_links_are_not_counted(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis, s3: Any
) -> None:
    # 1 MB stays reserved for the body, so 1.5 MB leaves ~0.5 MB of encoded files.
    limits = settings.limits.model_copy(update={"email_max_bytes": 1536 * 1024})
    small = settings.model_copy(update={"limits": limits})
    sample = await create_sample(sessionmaker, settings, email_subject="Files", email_content="See ((a)) ((b)) ((c))")
    chunk = b"%PDF" + b"x" * (150 * 1024)
    app = create_app(small)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as http,
    ):
        files = {name: _pdf(file=_b64(chunk), filename=f"{name}.pdf") for name in "abc"}
        body = await _send(http, sample.key, str(sample.email_template_id), files)
        assert body["errors"][0]["message"].startswith("personalisation: Attached files are too large for one email")
        assert await bucket_keys(s3, settings) == []
        files["c"]["sending_method"] = "link"
        response = await http.post(
            "/v2/notifications/email",
            headers={"Authorization": f"ApiKey-v1 {sample.key}"},
            json={
                "email_address": "ada@example.com",
                "template_id": str(sample.email_template_id),
                "personalisation": files,
            },
        )
        assert response.status_code == 201, response.text
    assert len(await bucket_keys(s3, settings)) == 3


async def test_sms_cannot_carry_files(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], client: AsyncClient, redis: Redis
) -> None:
    sample = await create_sample(sessionmaker, settings)
    response = await client.post(
        "/v2/notifications/sms",
        headers={"Authorization": f"ApiKey-v1 {sample.key}"},
        json={
            "phone_number": "+447911123456",
            "template_id": str(sample.sms_template_id),
            "personalisation": {"code": _pdf()},
        },
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"error": "BadRequestError", "message": "personalisation code: Files can only be sent by email"}
    ]
    assert await redis.xlen("inbox:sms:normal") == 0


async def test_a_failed_xadd_leaves_no_file_behind(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], app: Any, redis: Redis, s3: Any
) -> None:
    sample = await create_sample(sessionmaker, settings, email_subject="Files", email_content="See ((doc))")
    # A key of the wrong type makes the real XADD fail after the upload.
    await redis.set("inbox:email:normal", "not a stream")
    async with AsyncClient(transport=ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t") as http:
        response = await http.post(
            "/v2/notifications/email",
            headers={"Authorization": f"ApiKey-v1 {sample.key}"},
            json={
                "email_address": "ada@example.com",
                "template_id": str(sample.email_template_id),
                "personalisation": {"doc": _pdf()},
            },
        )
    assert response.status_code == 500
    assert await bucket_keys(s3, settings) == []


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (PDF, "a.pdf", sniff.PDF),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "a.png", sniff.PNG),
        (b"\xff\xd8\xff\xe0" + b"\0" * 8, "a.jpg", sniff.JPEG),
        (b"GIF89a" + b"\0" * 8, "a.gif", sniff.GIF),
        (_zip({"[Content_Types].xml": b"<x/>", "word/document.xml": b"<w/>"}), "a.docx", sniff.DOCX),
        (_zip({"xl/workbook.xml": b"<x/>"}), "a.xlsx", sniff.XLSX),
        (_zip({"mimetype": sniff.ODT.encode(), "content.xml": b"<x/>"}), "a.odt", sniff.ODT),
        (_zip({"notes.txt": b"hi"}), "a.zip", sniff.ZIP),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 8, "a.xls", sniff.XLS),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 8, "a.doc", sniff.DOC),
        (b"a,b\n1,2\n", "a.csv", sniff.CSV),
        (b'{"a": 1}', "a.json", sniff.JSON),
        ("Grüße\n".encode(), None, sniff.TEXT),
        (b"PK\x03\x04 broken zip", "a.docx", None),
        (b"text\x00with NUL", "a.txt", None),
    ],
)
def test_types_are_sniffed_from_content(data: bytes, filename: str | None, expected: str | None) -> None:
    assert sniff.content_type(data, filename) == expected
