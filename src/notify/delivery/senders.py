"""Provider adapters behind small protocols: SES v2 for email, SNS for SMS, and a fake for test keys."""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import uuid
from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from notify.attachments.schemas import AttachmentRef
from notify.delivery.exceptions import PermanentProviderError, ProviderError, TransientProviderError

# SES/SNS error codes that mean "try again later" (throttling, provider trouble) rather than "this message is bad".
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "LimitExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        "KMSThrottlingException",
    }
)
# Account-level pauses: nothing can be sent by anyone until they lift, so retry instead of failing each message.
ACCOUNT_PAUSED_CODES = frozenset(
    {"SendingPausedException", "AccountSendingPausedException", "AccountSuspendedException"}
)


@dataclass(frozen=True, slots=True)
class AttachedFile:
    """A file sent inside an email."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """A rendered email ready for the provider; `attachment_refs` are fetched into `files` just before sending."""

    to: str
    from_address: str
    subject: str
    html: str
    text: str
    reply_to: str | None = None
    attachment_refs: tuple[AttachmentRef, ...] = ()
    files: tuple[AttachedFile, ...] = ()


def build_raw_email(message: EmailMessage) -> bytes:
    """Build the MIME message SES sends raw: multipart/mixed of (text + HTML alternatives) and each file."""
    mime = MimeMessage(policy=email.policy.SMTP)
    mime["From"] = message.from_address
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = email.utils.formatdate(usegmt=True)
    if message.reply_to:
        mime["Reply-To"] = message.reply_to
    mime.set_content(message.text, cte="quoted-printable")
    mime.add_alternative(message.html, subtype="html", cte="quoted-printable")
    for file in message.files:
        maintype, _, subtype = file.content_type.partition("/")
        mime.add_attachment(file.data, maintype=maintype, subtype=subtype or "octet-stream", filename=file.filename)
    return mime.as_bytes()


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """A rendered SMS ready for the provider."""

    to: str
    body: str
    sender: str | None = None


class EmailSender(Protocol):
    """Sends one email; returns the provider's message id or raises ProviderError."""

    async def send_email(self, message: EmailMessage) -> str:
        """Send and return the provider message id."""
        ...


class SmsSender(Protocol):
    """Sends one SMS; returns the provider's message id or raises ProviderError."""

    async def send_sms(self, message: SmsMessage) -> str:
        """Send and return the provider message id."""
        ...


def classify_client_error(exc: ClientError) -> ProviderError:
    """Translate a botocore ClientError into a transient or permanent provider error."""
    error = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return classify_error(str(error.get("Code", "Unknown")), str(error.get("Message", "")), status)


def classify_error(code: str, message: str, status: int) -> ProviderError:
    """Translate a provider error code, message and HTTP status into a transient or permanent provider error."""
    described = f"{code}: {message or code}"
    if code in ACCOUNT_PAUSED_CODES:
        return TransientProviderError(described, account_paused=True)
    if code in TRANSIENT_CODES or status == 429 or status >= 500:
        return TransientProviderError(described)
    return PermanentProviderError(described)


async def send_email_params(message: EmailMessage, configuration_set: str | None) -> dict[str, Any]:
    """Build the SES v2 `SendEmail` parameters: Raw MIME when files are attached, else Simple content."""
    params: dict[str, Any] = {
        "FromEmailAddress": message.from_address,
        "Destination": {"ToAddresses": [message.to]},
    }
    if message.files:
        # Encoding up to 40 MB of attachments is CPU work: keep it off the event loop.
        params["Content"] = {"Raw": {"Data": await asyncio.to_thread(build_raw_email, message)}}
    else:
        params["Content"] = {
            "Simple": {
                "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": message.text, "Charset": "UTF-8"},
                    "Html": {"Data": message.html, "Charset": "UTF-8"},
                },
            }
        }
        if message.reply_to:
            params["ReplyToAddresses"] = [message.reply_to]
    if configuration_set:
        params["ConfigurationSetName"] = configuration_set
    return params


def sms_attributes(message: SmsMessage, default_sender: str | None) -> dict[str, Any]:
    """Build the SNS `Publish` message attributes: transactional type and, if any, the sender id."""
    attributes: dict[str, Any] = {
        "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
    }
    sender = message.sender or default_sender
    if sender:
        attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": sender}
    return attributes


class SesEmailSender:
    """Email through SES v2 `SendEmail` with one long-lived aioboto3 client."""

    def __init__(self, client: Any, configuration_set: str | None) -> None:
        self._client = client
        self._configuration_set = configuration_set

    async def send_email(self, message: EmailMessage) -> str:
        """Send through SES and return its MessageId."""
        params = await send_email_params(message, self._configuration_set)
        try:
            response = await self._client.send_email(**params)
        except ClientError as exc:
            raise classify_client_error(exc) from exc
        except (BotoCoreError, OSError, TimeoutError) as exc:
            raise TransientProviderError(f"{type(exc).__name__}: {exc}") from exc
        return str(response["MessageId"])


class SnsSmsSender:
    """SMS through SNS `Publish` with one long-lived aioboto3 client."""

    def __init__(self, client: Any, default_sender: str | None) -> None:
        self._client = client
        self._default_sender = default_sender

    async def send_sms(self, message: SmsMessage) -> str:
        """Publish to the phone number and return SNS's MessageId."""
        attributes = sms_attributes(message, self._default_sender)
        try:
            response = await self._client.publish(
                PhoneNumber=message.to, Message=message.body, MessageAttributes=attributes
            )
        except ClientError as exc:
            raise classify_client_error(exc) from exc
        except (BotoCoreError, OSError, TimeoutError) as exc:
            raise TransientProviderError(f"{type(exc).__name__}: {exc}") from exc
        return str(response["MessageId"])


class FakeSender:
    """Never reaches a provider: used for test keys (DESIGN §4.6); `record=True` keeps what it was given, for tests."""

    def __init__(self, *, record: bool = False) -> None:
        self._record = record
        self.emails: list[EmailMessage] = []
        self.sms: list[SmsMessage] = []

    async def send_email(self, message: EmailMessage) -> str:
        """Return a fake reference."""
        if self._record:
            self.emails.append(message)
        return f"test-{uuid.uuid4()}"

    async def send_sms(self, message: SmsMessage) -> str:
        """Return a fake reference."""
        if self._record:
            self.sms.append(message)
        return f"test-{uuid.uuid4()}"
