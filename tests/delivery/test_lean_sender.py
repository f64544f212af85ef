"""The lean SES/SNS senders against the aioboto3 ones: same bytes on the wire, same answers from moto, same errors."""

from __future__ import annotations

import base64
import email
import email.policy
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage as MimeMessage
from typing import Any

import botocore.auth
import orjson
import pytest
from aiobotocore.credentials import AioRefreshableCredentials
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from notify import aws
from notify.delivery.exceptions import PermanentProviderError, ProviderError, TransientProviderError
from notify.delivery.lean import (
    Endpoint,
    LeanSesEmailSender,
    LeanSnsSmsSender,
    SessionCredentials,
    lean_senders,
    open_senders,
    sign,
)
from notify.delivery.senders import AttachedFile, EmailMessage, SesEmailSender, SmsMessage, SnsSmsSender
from notify.embedded import free_port, sent_emails, sns_published
from notify.settings import AwsSettings
from notify.testing.fake_aws import FakeAwsConfig, FakeAwsServer
from tests import aws_stub
from tests.conftest import REGION, make_settings
from tests.delivery.test_http11 import ok, serving
from tests.servers import Servers

DOMAIN = "lean.test"
SECRETS = {"testing": "testing"}


@dataclass
class Senders:
    """The aioboto3 and lean senders for one endpoint."""

    ses: SesEmailSender
    lean_ses: LeanSesEmailSender
    sns: SnsSmsSender
    lean_sns: LeanSnsSmsSender


def aws_settings(servers: Servers, **update: Any) -> AwsSettings:
    """Return the moto AWS settings, with `update` applied."""
    return make_settings(servers).aws.model_copy(update=update)


@asynccontextmanager
async def open_both(settings: AwsSettings) -> AsyncIterator[Senders]:
    """Open an aioboto3 sender and a lean sender of each kind on `settings`."""
    session = aws.create_session(settings)
    async with (
        session.client("sesv2", **aws.client_kwargs(settings)) as ses,
        session.client("sns", **aws.client_kwargs(settings)) as sns,
        lean_senders(session, settings) as (lean_ses, lean_sns),
    ):
        yield Senders(
            SesEmailSender(ses, settings.ses_configuration_set),
            lean_ses,
            SnsSmsSender(sns, settings.sms_sender_id),
            lean_sns,
        )


def message(**overrides: Any) -> EmailMessage:
    """Return an email with a display name, a reply-to and non-ASCII text."""
    fields: dict[str, Any] = {
        "to": "ada@example.com",
        "from_address": f'"Café \\"Ops\\"" <alerts@{DOMAIN}>',
        "subject": "Code for Ada — 1234",
        "html": "<p>Hello Ada, your code is <b>1234</b>.</p>",
        "text": "Hello Ada, your code is 1234.",
        "reply_to": "help@example.com",
    }
    return EmailMessage(**(fields | overrides))


ATTACHED = (AttachedFile("report 2026.pdf", "application/pdf", b"%PDF-1.4\n" + bytes(range(256)) * 40),)


@dataclass
class Captured:
    """One request the capturing endpoint received, with whether its SigV4 signature checked out."""

    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    access_key: str


@dataclass
class CaptureServer:
    """A local AWS stand-in that checks every SigV4 signature with botocore's signer and records the request."""

    url: str = ""
    requests: list[Captured] = field(default_factory=list)


def check_signature(method: str, url: str, headers: dict[str, str], body: bytes) -> tuple[bool, str]:
    """Recompute the request's SigV4 signature from what arrived; return (matches, access key)."""
    fields = dict(
        part.strip().split("=", 1) for part in headers["Authorization"].removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    access_key, _, region, service, _ = fields["Credential"].split("/")
    lowered = {name.lower(): value for name, value in headers.items()}
    signed = {name: lowered[name] for name in fields["SignedHeaders"].split(";")}
    request = AWSRequest(method=method, url=url, data=body, headers=signed)
    request.context["timestamp"] = lowered["x-amz-date"]
    credentials = ReadOnlyCredentials(access_key, SECRETS[access_key], lowered.get("x-amz-security-token"))
    signer = SigV4Auth(credentials, service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    return expected == fields["Signature"], access_key


@pytest.fixture
async def capture() -> AsyncIterator[CaptureServer]:
    server = CaptureServer()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        ok, access_key = check_signature(request.method, f"http://{request.host}{request.path_qs}", headers, body)
        server.requests.append(Captured(request.path, headers, body, ok, access_key))
        if request.path == "/":
            xml = "<PublishResponse><PublishResult><MessageId>sms-1</MessageId></PublishResult></PublishResponse>"
            return web.Response(body=xml.encode(), content_type="text/xml")
        return web.json_response({"MessageId": f"email-{len(server.requests)}"})

    async with aws_stub.serving(handle) as server.url:
        yield server


async def verify_domain(settings: AwsSettings) -> None:
    """Verify the test's sending domain in moto's SES."""
    session = aws.create_session(settings)
    async with session.client("sesv2", **aws.client_kwargs(settings)) as ses:
        await ses.create_email_identity(EmailIdentity=DOMAIN)


def mime_summary(raw: bytes | str) -> dict[str, Any]:
    """Return what a raw MIME email says, without its Date and boundaries."""
    parsed = (
        email.message_from_bytes(raw, _class=MimeMessage, policy=email.policy.default)
        if isinstance(raw, bytes)
        else email.message_from_string(raw, _class=MimeMessage, policy=email.policy.default)
    )
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    return {
        "headers": {name: str(parsed[name]) for name in ("From", "To", "Subject", "Reply-To")},
        "type": parsed.get_content_type(),
        "text": text.get_content() if text else None,
        "html": html.get_content() if html else None,
        "files": [(a.get_filename(), a.get_content_type(), a.get_content()) for a in parsed.iter_attachments()],
    }


# -- the signature ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "a-session-token"], ids=["keys", "session"])
def test_the_lean_signature_is_the_one_botocore_gives_the_same_request_at_the_same_time(
    monkeypatch: pytest.MonkeyPatch, token: str | None
) -> None:
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    sqs_headers = {
        "X-Amz-Target": "AmazonSQS.ReceiveMessage",
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-query-mode": "true",
    }
    endpoints = [
        (Endpoint("https://email.eu-west-2.amazonaws.com/v2/email/outbound-emails", "ses", "eu-west-2"), "json"),
        (Endpoint("http://127.0.0.1:4566/", "sns", "ca-central-1"), "form"),
        (Endpoint("https://sqs.eu-west-2.amazonaws.com/", "sqs", "eu-west-2"), "sqs"),
    ]
    headers = {
        "json": {"Content-Type": "application/json"},
        "form": {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        "sqs": sqs_headers,  # every header the protocol sets is signed
    }
    body = '{"Content": {"Simple": {"Subject": {"Data": "Caf\u00e9"}}}}'.encode()
    # Two days and two regions: the cached signing key must follow both.
    for now in (datetime(2026, 12, 3, 23, 59, 59, tzinfo=UTC), datetime(2026, 12, 4, 0, 0, 1, tzinfo=UTC)):
        # botocore's clock reads naive UTC
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *_, at=now: at.replace(tzinfo=None))
        for endpoint, kind in endpoints:
            lean = sign(credentials, endpoint, body, headers[kind])
            general = AWSRequest(
                method="POST", url=endpoint.url, data=body, headers={**headers[kind], "Host": endpoint.host}
            )
            SigV4Auth(credentials, endpoint.service, endpoint.region).add_auth(general)
            assert {name: value for name, value in lean.headers.items() if name != "User-Agent"} == dict(
                general.headers.items()
            )
            assert lean.body == body


# -- the wire ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lean_http", [True, False], ids=["http11", "aiohttp"])
async def test_simple_email_goes_out_byte_for_byte_as_botocore_sends_it_and_signed(
    servers: Servers, capture: CaptureServer, lean_http: bool
) -> None:
    settings = aws_settings(
        servers, endpoint_url=capture.url, ses_configuration_set="notify-events", lean_http=lean_http
    )
    async with open_both(settings) as senders:
        assert await senders.ses.send_email(message()) == "email-1"
        assert await senders.lean_ses.send_email(message()) == "email-2"
    boto, lean = capture.requests
    assert lean.path == boto.path == "/v2/email/outbound-emails"
    assert lean.body == boto.body
    assert lean.headers["Content-Type"] == boto.headers["Content-Type"] == "application/json"
    assert boto.signature_ok
    assert lean.signature_ok
    sent = orjson.loads(lean.body)
    assert sent["ReplyToAddresses"] == ["help@example.com"]
    assert sent["ConfigurationSetName"] == "notify-events"
    assert sent["Content"]["Simple"]["Body"]["Text"] == {"Data": "Hello Ada, your code is 1234.", "Charset": "UTF-8"}


async def test_raw_email_with_files_goes_out_as_botocore_sends_it(servers: Servers, capture: CaptureServer) -> None:
    settings = aws_settings(servers, endpoint_url=capture.url)
    with_files = message(files=ATTACHED)
    async with open_both(settings) as senders:
        await senders.ses.send_email(with_files)
        await senders.lean_ses.send_email(with_files)
    boto, lean = (orjson.loads(captured.body) for captured in capture.requests)
    assert all(captured.signature_ok for captured in capture.requests)
    boto_raw, lean_raw = boto["Content"].pop("Raw")["Data"], lean["Content"].pop("Raw")["Data"]
    assert lean == boto  # everything but the MIME text, whose Date and boundaries differ per build
    assert mime_summary(base64.b64decode(lean_raw)) == mime_summary(base64.b64decode(boto_raw))
    assert mime_summary(base64.b64decode(lean_raw))["files"] == [
        ("report 2026.pdf", "application/pdf", ATTACHED[0].data)
    ]


@pytest.mark.parametrize("lean_http", [True, False], ids=["http11", "aiohttp"])
async def test_sms_goes_out_byte_for_byte_as_botocore_sends_it(
    servers: Servers, capture: CaptureServer, lean_http: bool
) -> None:
    settings = aws_settings(servers, endpoint_url=capture.url, sms_sender_id="NOTIFY", lean_http=lean_http)
    sms = SmsMessage(to="+447911123456", body="Your code is 5678 & more: é+ü=?")
    async with open_both(settings) as senders:
        assert await senders.sns.send_sms(sms) == "sms-1"
        assert await senders.lean_sns.send_sms(sms) == "sms-1"
    boto, lean = capture.requests
    assert lean.body == boto.body
    assert lean.headers["Content-Type"] == boto.headers["Content-Type"]
    assert boto.signature_ok
    assert lean.signature_ok


async def test_credentials_are_frozen_per_send_so_refreshed_keys_are_used(capture: CaptureServer) -> None:
    issued: list[str] = []

    async def refresh() -> dict[str, str]:
        key = f"rotated-{len(issued)}"
        issued.append(key)
        SECRETS[key] = f"secret-{key}"
        expiry = datetime.now(UTC) + timedelta(minutes=1)  # inside the mandatory-refresh window: renewed per call
        return {
            "access_key": key,
            "secret_key": SECRETS[key],
            "token": f"token-{key}",
            "expiry_time": expiry.isoformat(),
        }

    class Session:
        async def get_credentials(self) -> Any:
            return AioRefreshableCredentials.create_from_metadata(await refresh(), refresh, "test")

    settings = AwsSettings(endpoint_url=capture.url, region=REGION)
    async with lean_senders(Session(), settings) as (lean_ses, _):
        await lean_ses.send_email(message())
        await lean_ses.send_email(message())
    assert [captured.signature_ok for captured in capture.requests] == [True, True]
    keys = [captured.access_key for captured in capture.requests]
    assert keys[0] != keys[1]
    assert set(keys) <= set(issued)
    assert capture.requests[1].headers["X-Amz-Security-Token"] == f"token-{keys[1]}"


# -- moto --------------------------------------------------------------------------------------------


async def test_the_same_email_reaches_moto_the_same_way(servers: Servers) -> None:
    settings = aws_settings(servers)
    await verify_domain(settings)
    before = len(sent_emails(REGION))
    async with open_both(settings) as senders:
        boto_id = await senders.ses.send_email(message())
        lean_id = await senders.lean_ses.send_email(message())
    boto, lean = sent_emails(REGION)[before:]
    assert (boto.id, lean.id) == (boto_id, lean_id)
    assert boto_id != lean_id
    assert lean.source == boto.source == f'"Café \\"Ops\\"" <alerts@{DOMAIN}>'
    assert lean.subject == boto.subject == "Code for Ada — 1234"
    assert lean.body == boto.body == "<p>Hello Ada, your code is <b>1234</b>.</p>"
    assert lean.destinations == boto.destinations == {"ToAddresses": ["ada@example.com"]}


async def test_raw_email_with_files_reaches_moto_the_same_way(servers: Servers) -> None:
    settings = aws_settings(servers)
    await verify_domain(settings)
    before = len(sent_emails(REGION))
    async with open_both(settings) as senders:
        await senders.ses.send_email(message(files=ATTACHED))
        await senders.lean_ses.send_email(message(files=ATTACHED))
    boto, lean = sent_emails(REGION)[before:]
    assert lean.destinations == boto.destinations  # moto lists the Destination and the MIME To header
    assert set(lean.destinations) == {"ada@example.com"}
    assert mime_summary(lean.raw_data) == mime_summary(boto.raw_data)
    assert mime_summary(lean.raw_data)["headers"]["Reply-To"] == "help@example.com"


async def test_an_unverified_sender_is_a_permanent_error_with_the_same_code_from_both(servers: Servers) -> None:
    settings = aws_settings(servers)
    unverified = message(from_address=f"someone@unverified-{uuid.uuid4().hex[:8]}.test")
    async with open_both(settings) as senders:
        with pytest.raises(PermanentProviderError) as boto:
            await senders.ses.send_email(unverified)
        with pytest.raises(PermanentProviderError) as lean:
            await senders.lean_ses.send_email(unverified)
    assert lean.value.message.startswith("MessageRejected: ")
    assert lean.value.message == boto.value.message


async def test_an_invalid_phone_number_is_the_same_error_from_both(servers: Servers) -> None:
    settings = aws_settings(servers)
    before = len(sns_published(REGION))
    async with open_both(settings) as senders:
        assert await senders.lean_sns.send_sms(SmsMessage(to="+447911000111", body="lean")) != ""
        await senders.sns.send_sms(SmsMessage(to="+447911000111", body="boto"))
        with pytest.raises(ProviderError) as boto:
            await senders.sns.send_sms(SmsMessage(to="not-a-number", body="x"))
        with pytest.raises(ProviderError) as lean:
            await senders.lean_sns.send_sms(SmsMessage(to="not-a-number", body="x"))
    assert [(number, text) for number, text, *_ in sns_published(REGION)[before:]] == [
        ("+447911000111", "lean"),
        ("+447911000111", "boto"),
    ]
    assert type(lean.value) is type(boto.value) is PermanentProviderError
    assert lean.value.message == boto.value.message
    assert lean.value.message.startswith("InvalidParameter")


# -- transient failures --------------------------------------------------------------------------------


async def test_two_throttles_are_absorbed_by_quick_retries_as_botocore_does(servers: Servers) -> None:
    with FakeAwsServer(FakeAwsConfig(fail_first_n=2)) as server:
        settings = aws_settings(servers, endpoint_url=server.url)
        async with open_both(settings) as senders:
            boto_reference = await senders.ses.send_email(message())
            assert server.fake.counters.errors_returned == 2
            server.fake.configure(fail_first_n=2)
            lean_reference = await senders.lean_ses.send_email(message())
            assert server.fake.counters.errors_returned == 4
            server.fake.configure(fail_first_n=2)
            sms_reference = await senders.lean_sns.send_sms(SmsMessage(to="+447911123456", body="hi"))
        assert server.fake.counters.errors_returned == 6
        recorded = server.fake.recorded_emails()
        assert [sms["message_id"] for sms in server.fake.recorded_sms()] == [sms_reference]
    assert [(r["message_id"], r["subject"], r["reply_to"]) for r in recorded] == [
        (boto_reference, "Code for Ada — 1234", ["help@example.com"]),
        (lean_reference, "Code for Ada — 1234", ["help@example.com"]),
    ]


async def test_throttling_past_the_quick_retry_is_the_same_transient_error_from_both(servers: Servers) -> None:
    with FakeAwsServer(FakeAwsConfig(fail_first_n=3)) as server:
        settings = aws_settings(servers, endpoint_url=server.url)
        async with open_both(settings) as senders:
            with pytest.raises(TransientProviderError) as boto:
                await senders.ses.send_email(message())
            server.fake.configure(fail_first_n=3)
            with pytest.raises(TransientProviderError) as lean:
                await senders.lean_ses.send_email(message())
            server.fake.configure(fail_first_n=3)
            with pytest.raises(TransientProviderError) as boto_sms:
                await senders.sns.send_sms(SmsMessage(to="+447911123456", body="hi"))
            server.fake.configure(fail_first_n=3)
            with pytest.raises(TransientProviderError) as lean_sms:
                await senders.lean_sns.send_sms(SmsMessage(to="+447911123456", body="hi"))
        assert server.fake.counters.errors_returned == 12, "each sender called 3 times"
        assert server.fake.counters.sent_emails == server.fake.counters.published_sms == 0
    assert lean.value.message == boto.value.message == "TooManyRequestsException: Maximum sending rate exceeded."
    assert not lean.value.account_paused
    assert lean_sms.value.message == boto_sms.value.message == "Throttling: Rate exceeded"


async def test_a_refused_connection_is_transient(servers: Servers) -> None:
    settings = aws_settings(servers, endpoint_url=f"http://127.0.0.1:{free_port()}", connect_timeout_s=1.0)
    async with open_both(settings) as senders:
        start = time.monotonic()
        with pytest.raises(TransientProviderError) as email_error:
            await senders.lean_ses.send_email(message())
        with pytest.raises(TransientProviderError):
            await senders.lean_sns.send_sms(SmsMessage(to="+447911123456", body="hi"))
    assert time.monotonic() - start < 8  # two senders, each at most 1 + 2 s of quick-retry backoff
    assert email_error.value.message.startswith("ConnectionRefusedError")


async def test_a_5xx_without_a_json_body_is_transient() -> None:
    async def unavailable(_: web.Request) -> web.Response:
        return web.Response(status=503, body=b"<html>busy</html>", content_type="text/html")

    async with aws_stub.serving(unavailable) as url:
        settings = AwsSettings(endpoint_url=url, access_key_id="a", secret_access_key="b")
        async with open_both(settings) as senders:
            with pytest.raises(TransientProviderError) as lean:
                await senders.lean_ses.send_email(message())
    assert lean.value.message == "503: Service Unavailable"


@pytest.mark.parametrize("answer", [b"<html>ok</html>", b'{"Id": "x"}', b"[]"], ids=["not-json", "no-id", "array"])
async def test_a_2xx_without_a_message_id_is_transient(answer: bytes) -> None:
    """SES may have taken the email: retried, as a timeout after it did would be."""

    async def odd(_: web.Request) -> web.Response:
        return web.Response(status=200, body=answer, content_type="application/json")

    async with aws_stub.serving(odd) as url:
        settings = AwsSettings(endpoint_url=url, access_key_id="a", secret_access_key="b")
        async with open_both(settings) as senders:
            with pytest.raises(TransientProviderError) as lean:
                await senders.lean_ses.send_email(message())
    assert lean.value.message.startswith("Unreadable SES answer: ")


# -- wiring --------------------------------------------------------------------------------------------


async def test_the_worker_opens_lean_senders_unless_switched_off(servers: Servers) -> None:
    for lean, expected in ((True, (LeanSesEmailSender, LeanSnsSmsSender)), (False, (SesEmailSender, SnsSmsSender))):
        settings = aws_settings(servers, lean_sender=lean)
        async with AsyncExitStack() as stack:
            email_sender, sms_sender = await open_senders(stack, aws.create_session(settings), settings)
            assert (type(email_sender), type(sms_sender)) == expected
    assert AwsSettings().lean_sender is True


async def test_missing_credentials_are_a_transient_error_not_a_crash() -> None:
    class NoCredentials:
        async def get_credentials(self) -> None:
            return None

    credentials = SessionCredentials(NoCredentials())
    with pytest.raises(TransientProviderError, match="NoCredentialsError"):
        await credentials.frozen()


async def test_an_endpoint_behind_a_proxy_is_reached_through_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    # The lean HTTP/1.1 client does not speak to proxies: a proxied endpoint goes out through aiohttp.
    async with serving(lambda _: ok(b'{"MessageId": "via-proxy"}')) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        settings = AwsSettings(
            endpoint_url="http://email.proxied.test", region=REGION, access_key_id="testing", secret_access_key="t"
        )
        async with lean_senders(aws.create_session(settings), settings) as (ses, _):
            assert await ses.send_email(message()) == "via-proxy"
    [request] = proxy.requests
    assert request.head[0] == "POST http://email.proxied.test/v2/email/outbound-emails HTTP/1.1"
