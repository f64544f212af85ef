"""A fast fake AWS endpoint (SES v2, SNS, SQS) for benchmarks and tests.

It answers what botocore actually sends: SES v2 over rest-json (`POST /v2/email/...`), SNS over the query
protocol (form-encoded `POST /` with `Action=Publish`) and SQS over the JSON protocol (`POST /` with
`X-Amz-Target: AmazonSQS.<Operation>`). Signatures are not checked, but a request without a SigV4
`Authorization` header is refused as AWS would, so an unsigned hand-built request cannot pass unnoticed.

Benchmarks run it in its own process and read the counters over HTTP::

    python -m notify.testing.fake_aws --port 9999 --latency-ms 20 --queue bounces --queue deliveries

Tests run it in a background thread with `FakeAwsServer`. Both serve it over a lean HTTP/1.1 server of its
own (`serve`); `FakeAws.app` is the same fake as an ASGI app, for any ASGI server. Admin routes (never delayed
or failed): `GET /_fake/stats`, `POST /_fake/reset`, `GET /_fake/emails?limit=N`, `GET /_fake/sms?limit=N`,
`POST /_fake/queues/{name}` (JSON list of bodies to enqueue) and `POST /_fake/config` (change latency,
error rate, `fail_first_n`… at run time, for drills).

SQS long polling: when a queue has nothing visible, ReceiveMessage waits at most
`min(WaitTimeSeconds, sqs_max_wait_s)`; the default `sqs_max_wait_s=0` answers an empty queue at once, so
a poller that loops "until empty" finishes without paying a 20 s tail.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import hashlib
import heapq
import http
import itertools
import logging
import random
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any, NamedTuple, TypedDict
from urllib.parse import parse_qs, parse_qsl, unquote
from xml.sax.saxutils import escape

import httptools
import orjson
from starlette.types import Receive, Scope, Send

_JSON = b"application/json"
_SQS_JSON = b"application/x-amz-json-1.0"
_XML = b"text/xml"
_SNS_NS = "http://sns.amazonaws.com/doc/2010-03-31/"
_MAX_SQS_BATCH = 10
_ADMIN_PREFIX = "/_fake/"  # the fake's own routes: stats, reset, recorded sends, queues, config
_RUNTIME_FIELDS = frozenset(
    {"latency_s", "error_rate", "seed", "fail_first_n", "sqs_visibility_timeout_s", "sqs_max_wait_s"}
)


@dataclasses.dataclass(frozen=True, slots=True)
class FakeAwsConfig:
    """How the fake answers.

    Attributes:
        latency_s: Delay before answering every AWS request (not the `/_fake/` routes).
        error_rate: Fraction of sends (SES SendEmail, SNS Publish) answered with a throttling error.
        seed: Seed for the error draw, so a run with an error rate is repeatable.
        fail_first_n: Answer the first N sends (after start, reset or reconfigure) with throttling.
        max_recorded: How many recent emails and SMS to keep for inspection; counters are unbounded.
        sqs_visibility_timeout_s: How long a received SQS message stays hidden when the request names none.
        sqs_max_wait_s: Upper bound on an SQS long poll of an empty queue (see the module docstring).
        queues: SQS queues that exist from the start (others come from CreateQueue or `enqueue_sqs`).
        account_id: Account id used in queue URLs.
    """

    latency_s: float = 0.0
    error_rate: float = 0.0
    seed: int | None = None
    fail_first_n: int = 0
    max_recorded: int = 100_000
    sqs_visibility_timeout_s: float = 30.0
    sqs_max_wait_s: float = 0.0
    queues: tuple[str, ...] = ()
    account_id: str = "000000000000"


@dataclasses.dataclass(slots=True)
class FakeAwsCounters:
    """What the fake has answered since start or the last reset."""

    sent_emails: int = 0
    published_sms: int = 0
    sqs_received: int = 0
    sqs_deleted: int = 0
    sqs_sent: int = 0
    errors_returned: int = 0
    bad_requests: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters by name."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


class RecordedEmail(TypedDict):
    """One SES v2 SendEmail request as the fake saw it (`raw` is the decoded MIME message, if any)."""

    message_id: str
    from_address: str | None
    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: list[str]
    subject: str | None
    text: str | None
    html: str | None
    raw: str | None
    configuration_set: str | None
    tags: dict[str, str]


class RecordedSms(TypedDict):
    """One SNS Publish request as the fake saw it."""

    message_id: str
    phone_number: str | None
    topic_arn: str | None
    message: str
    attributes: dict[str, str]


class _Reply(NamedTuple):
    status: int
    body: bytes
    content_type: bytes = _JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclasses.dataclass(slots=True)
class _SqsMessage:
    message_id: str
    body: str
    md5: str
    sent_ms: int
    receive_count: int = 0
    first_receive_ms: int = 0


class _SqsQueue:
    """A standard queue: visible messages in a deque, received ones hidden until deleted or timed out."""

    def __init__(self) -> None:
        self.visible: deque[_SqsMessage] = deque()
        self.in_flight: dict[str, _SqsMessage] = {}
        self._deadlines: list[tuple[float, str]] = []

    def receive(self, count: int, hide_s: float, handles: itertools.count[int]) -> list[tuple[str, _SqsMessage]]:
        self.requeue_expired()
        now_ms = int(time.time() * 1000)
        deadline = time.monotonic() + hide_s
        taken: list[tuple[str, _SqsMessage]] = []
        while self.visible and len(taken) < count:
            message = self.visible.popleft()
            message.receive_count += 1
            message.first_receive_ms = message.first_receive_ms or now_ms
            handle = f"rh-{next(handles):012d}-{message.message_id}"
            self.in_flight[handle] = message
            heapq.heappush(self._deadlines, (deadline, handle))
            taken.append((handle, message))
        return taken

    def requeue_expired(self) -> None:
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            message = self.in_flight.pop(heapq.heappop(self._deadlines)[1], None)
            if message is not None:
                self.visible.append(message)

    def clear(self) -> None:
        self.visible.clear()
        self.in_flight.clear()
        self._deadlines.clear()


def create_fake_aws(config: FakeAwsConfig | None = None) -> FakeAws:
    """Build a fake AWS endpoint; serve `fake.app` with any ASGI server."""
    return FakeAws(config or FakeAwsConfig())


class FakeAws:
    """The fake's state (counters, recorded messages, SQS queues) and its ASGI app (`app`)."""

    def __init__(self, config: FakeAwsConfig) -> None:
        self.config = config
        self.counters = FakeAwsCounters()
        self.emails: deque[tuple[str, bytes]] = deque(maxlen=config.max_recorded)
        self.sms: deque[RecordedSms] = deque(maxlen=config.max_recorded)
        self.queues: dict[str, _SqsQueue] = {name: _SqsQueue() for name in config.queues}
        self._lock = threading.Lock()
        # A random prefix keeps ids unique across restarts of the fake against a database that outlives it.
        self._prefix = secrets.token_hex(4)
        self._ids = itertools.count(1)
        self._handles = itertools.count(1)
        self._rng = random.Random(config.seed)
        self._fail_remaining = config.fail_first_n

    # -- state, usable from any thread -------------------------------------------------------------

    def reset(self) -> None:
        """Zero the counters, forget recorded messages, empty every queue and re-arm the error settings."""
        with self._lock:
            self.counters = FakeAwsCounters()
            self.emails.clear()
            self.sms.clear()
            for queue in self.queues.values():
                queue.clear()
            self._rng = random.Random(self.config.seed)
            self._fail_remaining = self.config.fail_first_n

    def configure(self, **changes: Any) -> FakeAwsConfig:
        """Change latency, error rate, seed, `fail_first_n` or SQS timings while running."""
        unknown = changes.keys() - _RUNTIME_FIELDS
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)} at run time; allowed: {sorted(_RUNTIME_FIELDS)}")
        with self._lock:
            self.config = dataclasses.replace(self.config, **changes)
            self._rng = random.Random(self.config.seed)
            self._fail_remaining = self.config.fail_first_n
        return self.config

    def enqueue_sqs(self, queue_name: str, bodies: list[str]) -> None:
        """Append messages to a queue, creating it if needed."""
        messages = [self._new_sqs_message(body) for body in bodies]
        with self._lock:
            self.queues.setdefault(queue_name, _SqsQueue()).visible.extend(messages)

    def stats(self) -> dict[str, Any]:
        """Return the counters and each queue's visible / in-flight sizes."""
        with self._lock:
            queues: dict[str, dict[str, int]] = {}
            for name, queue in self.queues.items():
                queue.requeue_expired()
                queues[name] = {"visible": len(queue.visible), "in_flight": len(queue.in_flight)}
        return {**self.counters.as_dict(), "queues": queues}

    def recorded_emails(self, limit: int | None = None) -> list[RecordedEmail]:
        """Return the most recent recorded emails, oldest first."""
        recent = list(self.emails)[-limit:] if limit else list(self.emails)
        return [_email_record(message_id, body) for message_id, body in recent]

    def recorded_sms(self, limit: int | None = None) -> list[RecordedSms]:
        """Return the most recent recorded SNS publishes, oldest first."""
        return list(self.sms)[-limit:] if limit else list(self.sms)

    def _next_id(self) -> str:
        return f"{self._prefix}-{next(self._ids):012d}"

    def _should_fail(self) -> bool:
        if self._fail_remaining > 0:
            self._fail_remaining -= 1
        elif not self.config.error_rate or self._rng.random() >= self.config.error_rate:
            return False
        self.counters.errors_returned += 1
        return True

    # -- ASGI --------------------------------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection (serve with `interface="asgi3"`: this is a bound method)."""
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        reply = await self.answer(scope["method"], scope["path"], scope["query_string"], dict(scope["headers"]), body)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [
                    (b"content-type", reply.content_type),
                    (b"content-length", str(len(reply.body)).encode()),
                    *reply.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})

    async def answer(
        self, method: str, path: str, query_string: bytes, headers: dict[bytes, bytes], body: bytes
    ) -> _Reply:
        """Answer one request (header names in lower case), as both servers of the fake do."""
        if path.startswith(_ADMIN_PREFIX):
            return self._admin(method, path, query_string, body)
        if not signed(headers):
            return self._bad(403, "MissingAuthenticationTokenException", "request is not signed with SigV4")
        if self.config.latency_s > 0:
            await asyncio.sleep(self.config.latency_s)
        if _is_sqs(method, path, headers):
            target = headers[b"x-amz-target"].decode()
            return await self._sqs(target, body, headers.get(b"host", b"localhost").decode())
        return self.answer_now(method, path, headers, body)

    @staticmethod
    def answered_now(method: str, path: str, headers: dict[bytes, bytes]) -> bool:
        """Whether `answer` ends in `answer_now` once the latency is over: a signed request, neither admin nor SQS."""
        return not path.startswith(_ADMIN_PREFIX) and signed(headers) and not _is_sqs(method, path, headers)

    def answer_now(self, method: str, path: str, headers: dict[bytes, bytes], body: bytes) -> _Reply:
        """Answer a signed AWS request that needs no waiting of its own (anything but SQS), once its latency is over."""
        if method == "POST" and path == "/v2/email/outbound-emails":
            return self._ses_send_email(body)
        if method == "POST" and path == "/v2/email/identities":
            return self._ses_create_identity(body)
        if method == "POST" and path == "/" and headers.get(b"content-type", b"").startswith(b"application/x-www-"):
            return self._query(body)
        return self._bad(400, "UnknownOperationException", f"fake AWS has no route for {method} {path}")

    def _bad(self, status: int, code: str, message: str) -> _Reply:
        self.counters.bad_requests += 1
        body = orjson.dumps({"__type": code, "message": message})
        return _Reply(status, body, headers=((b"x-amzn-errortype", code.encode()),))

    # -- SES v2 (rest-json) ------------------------------------------------------------------------

    def _ses_send_email(self, body: bytes) -> _Reply:
        try:
            problem = _send_email_problem(orjson.loads(body))
        except orjson.JSONDecodeError:
            problem = "body is not JSON"
        if problem:
            return self._bad(400, "BadRequestException", problem)
        if self._should_fail():
            return _Reply(
                429,
                b'{"message":"Maximum sending rate exceeded."}',
                headers=((b"x-amzn-errortype", b"TooManyRequestsException"),),
            )
        message_id = self._next_id()
        self.emails.append((message_id, body))
        self.counters.sent_emails += 1
        return _Reply(200, b'{"MessageId":"' + message_id.encode() + b'"}')

    def _ses_create_identity(self, body: bytes) -> _Reply:
        try:
            identity = str(orjson.loads(body).get("EmailIdentity", ""))
        except (orjson.JSONDecodeError, AttributeError):
            identity = ""
        if not identity:
            return self._bad(400, "BadRequestException", "EmailIdentity is required")
        kind = "EMAIL_ADDRESS" if "@" in identity else "DOMAIN"
        return _Reply(200, orjson.dumps({"IdentityType": kind, "VerifiedForSendingStatus": True}))

    # -- SNS (query protocol, XML answers) ---------------------------------------------------------

    def _query(self, body: bytes) -> _Reply:
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        action = form.get("Action", "")
        if action != "Publish":
            return self._query_error("InvalidAction", f"fake AWS has no query-protocol action {action or '(none)'}")
        if not form.get("Message") or not (form.get("PhoneNumber") or form.get("TopicArn") or form.get("TargetArn")):
            return self._query_error("InvalidParameter", "Publish needs Message and PhoneNumber, TopicArn or TargetArn")
        if self._should_fail():
            return _query_error_reply("Throttling", "Rate exceeded", self._next_id())
        message_id = self._next_id()
        attributes = {
            form[name_key]: form.get(f"{name_key[: -len('Name')]}Value.StringValue", "")
            for name_key in form
            if name_key.startswith("MessageAttributes.entry.") and name_key.endswith(".Name")
        }
        self.sms.append(
            RecordedSms(
                message_id=message_id,
                phone_number=form.get("PhoneNumber"),
                topic_arn=form.get("TopicArn") or form.get("TargetArn"),
                message=form["Message"],
                attributes=attributes,
            )
        )
        self.counters.published_sms += 1
        return _Reply(
            200,
            (
                f'<PublishResponse xmlns="{_SNS_NS}"><PublishResult><MessageId>{message_id}</MessageId>'
                f"</PublishResult><ResponseMetadata><RequestId>{message_id}</RequestId></ResponseMetadata>"
                "</PublishResponse>"
            ).encode(),
            _XML,
        )

    def _query_error(self, code: str, message: str) -> _Reply:
        self.counters.bad_requests += 1
        return _query_error_reply(code, message, self._next_id())

    # -- SQS (JSON protocol) -----------------------------------------------------------------------

    async def _sqs(self, target: str, body: bytes, host: str) -> _Reply:
        operation = target.removeprefix("AmazonSQS.")
        request: dict[str, Any] = orjson.loads(body or b"{}")
        if operation in ("CreateQueue", "GetQueueUrl"):
            name = str(request.get("QueueName", ""))
            with self._lock:
                if operation == "CreateQueue":
                    self.queues.setdefault(name, _SqsQueue())
                if name not in self.queues:
                    return self._sqs_error("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", name)
            return _Reply(200, orjson.dumps({"QueueUrl": f"http://{host}/{self.config.account_id}/{name}"}), _SQS_JSON)
        name = str(request.get("QueueUrl", "")).rsplit("/", 1)[-1]
        if name not in self.queues:
            return self._sqs_error("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", name)
        if operation == "ReceiveMessage":
            return await self._sqs_receive(name, request)
        handler = {
            "DeleteMessage": self._sqs_delete,
            "DeleteMessageBatch": self._sqs_delete_batch,
            "SendMessage": self._sqs_send,
            "GetQueueAttributes": self._sqs_attributes,
        }.get(operation)
        if handler is None:
            return self._bad(400, "UnknownOperationException", f"fake AWS has no route for SQS {operation}")
        with self._lock:
            return handler(self.queues[name], request)

    async def _sqs_receive(self, name: str, request: dict[str, Any]) -> _Reply:
        count = int(request.get("MaxNumberOfMessages", 1))
        if not 1 <= count <= _MAX_SQS_BATCH:
            return self._sqs_error("InvalidParameterValue", "InvalidParameterValue", f"MaxNumberOfMessages={count}")
        hide_s = float(request.get("VisibilityTimeout", self.config.sqs_visibility_timeout_s))
        give_up = time.monotonic() + min(float(request.get("WaitTimeSeconds", 0)), self.config.sqs_max_wait_s)
        while True:
            with self._lock:
                taken = self.queues[name].receive(count, hide_s, self._handles)
            if taken or time.monotonic() >= give_up:
                break
            await asyncio.sleep(0.02)
        self.counters.sqs_received += len(taken)
        if not taken:
            return _Reply(200, b"{}", _SQS_JSON)
        wanted = set(request.get("MessageSystemAttributeNames") or request.get("AttributeNames") or ())
        messages = [_sqs_message_json(handle, message, wanted, self.config.account_id) for handle, message in taken]
        return _Reply(200, orjson.dumps({"Messages": messages}), _SQS_JSON)

    def _sqs_delete(self, queue: _SqsQueue, request: dict[str, Any]) -> _Reply:
        handle = str(request.get("ReceiptHandle", ""))
        if not handle.startswith("rh-"):
            return self._sqs_error("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", handle)
        # A stale handle (already deleted, or hidden time over) deletes nothing and succeeds, as SQS does.
        if queue.in_flight.pop(handle, None) is not None:
            self.counters.sqs_deleted += 1
        return _Reply(200, b"{}", _SQS_JSON)

    def _sqs_delete_batch(self, queue: _SqsQueue, request: dict[str, Any]) -> _Reply:
        successful: list[dict[str, str]] = []
        failed: list[dict[str, Any]] = []
        for entry in request.get("Entries", []):
            handle = str(entry.get("ReceiptHandle", ""))
            if not handle.startswith("rh-"):
                failed.append(
                    {"Id": entry["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid", "Message": handle}
                )
                continue
            if queue.in_flight.pop(handle, None) is not None:
                self.counters.sqs_deleted += 1
            successful.append({"Id": entry["Id"]})
        return _Reply(200, orjson.dumps({"Successful": successful, "Failed": failed}), _SQS_JSON)

    def _sqs_send(self, queue: _SqsQueue, request: dict[str, Any]) -> _Reply:
        message = self._new_sqs_message(str(request["MessageBody"]))
        queue.visible.append(message)
        self.counters.sqs_sent += 1
        return _Reply(200, orjson.dumps({"MessageId": message.message_id, "MD5OfMessageBody": message.md5}), _SQS_JSON)

    def _new_sqs_message(self, body: str) -> _SqsMessage:
        md5 = hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()
        return _SqsMessage(self._next_id(), body, md5, int(time.time() * 1000))

    def _sqs_attributes(self, queue: _SqsQueue, request: dict[str, Any]) -> _Reply:
        queue.requeue_expired()
        attributes = {
            "ApproximateNumberOfMessages": str(len(queue.visible)),
            "ApproximateNumberOfMessagesNotVisible": str(len(queue.in_flight)),
            "VisibilityTimeout": str(int(self.config.sqs_visibility_timeout_s)),
        }
        return _Reply(200, orjson.dumps({"Attributes": attributes}), _SQS_JSON)

    def _sqs_error(self, code: str, query_code: str, detail: str) -> _Reply:
        self.counters.bad_requests += 1
        # botocore reports the query-protocol code from this header, as it does against real SQS.
        headers = ((b"x-amzn-query-error", f"{query_code};Sender".encode()),)
        body = orjson.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": f"fake AWS: {code}: {detail}"})
        return _Reply(400, body, _SQS_JSON, headers)

    # -- admin routes --------------------------------------------------------------------------------

    def _admin(self, method: str, path: str, query_string: bytes, body: bytes) -> _Reply:
        limit_values = parse_qs(query_string.decode()).get("limit")
        limit = int(limit_values[0]) if limit_values else 100
        if method == "GET" and path == "/_fake/stats":
            return _Reply(200, orjson.dumps(self.stats()))
        if method == "GET" and path == "/_fake/emails":
            return _Reply(200, orjson.dumps(self.recorded_emails(limit)))
        if method == "GET" and path == "/_fake/sms":
            return _Reply(200, orjson.dumps(self.recorded_sms(limit)))
        if method == "POST" and path == "/_fake/reset":
            self.reset()
            return _Reply(200, orjson.dumps(self.stats()))
        if method == "POST" and path.startswith("/_fake/queues/"):
            bodies = [str(item) for item in orjson.loads(body)]
            self.enqueue_sqs(path.removeprefix("/_fake/queues/"), bodies)
            return _Reply(200, orjson.dumps({"enqueued": len(bodies)}))
        if method == "POST" and path == "/_fake/config":
            try:
                config = self.configure(**orjson.loads(body))
            except (ValueError, TypeError) as exc:
                return _Reply(400, orjson.dumps({"message": str(exc)}))
            return _Reply(200, orjson.dumps(dataclasses.asdict(config)))
        return _Reply(404, orjson.dumps({"message": f"fake AWS has no admin route {method} {path}"}))


def signed(headers: dict[bytes, bytes]) -> bool:
    """Whether a request carries a SigV4 `Authorization` header (its signature is not checked)."""
    return headers.get(b"authorization", b"").startswith(b"AWS4-HMAC-SHA256 ")


def _is_sqs(method: str, path: str, headers: dict[bytes, bytes]) -> bool:
    """SQS's JSON protocol: a POST to / naming its operation in `X-Amz-Target`."""
    return method == "POST" and path == "/" and b"x-amz-target" in headers


def _send_email_problem(request: Any) -> str | None:
    if not isinstance(request, dict):
        return "body must be a JSON object"
    content = request.get("Content")
    if not isinstance(content, dict) or not content.keys() & {"Simple", "Raw", "Template"}:
        return "Content must hold Simple, Raw or Template"
    if "Raw" in content:
        return None
    destination = request.get("Destination") or {}
    if not any(destination.get(key) for key in ("ToAddresses", "CcAddresses", "BccAddresses")):
        return "Destination needs at least one address"
    return None if request.get("FromEmailAddress") else "FromEmailAddress is required"


def _email_record(message_id: str, body: bytes) -> RecordedEmail:
    request = orjson.loads(body)
    destination = request.get("Destination") or {}
    content = request.get("Content") or {}
    simple = content.get("Simple") or {}
    simple_body = simple.get("Body") or {}
    raw = (content.get("Raw") or {}).get("Data")
    return RecordedEmail(
        message_id=message_id,
        from_address=request.get("FromEmailAddress"),
        to=destination.get("ToAddresses", []),
        cc=destination.get("CcAddresses", []),
        bcc=destination.get("BccAddresses", []),
        reply_to=request.get("ReplyToAddresses", []),
        subject=(simple.get("Subject") or {}).get("Data"),
        text=(simple_body.get("Text") or {}).get("Data"),
        html=(simple_body.get("Html") or {}).get("Data"),
        raw=base64.b64decode(raw).decode(errors="replace") if raw else None,
        configuration_set=request.get("ConfigurationSetName"),
        tags={tag["Name"]: tag["Value"] for tag in request.get("EmailTags", [])},
    )


def _sqs_message_json(handle: str, message: _SqsMessage, wanted: set[str], account_id: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "MessageId": message.message_id,
        "ReceiptHandle": handle,
        "MD5OfBody": message.md5,
        "Body": message.body,
    }
    if wanted:
        attributes = {
            "SenderId": account_id,
            "SentTimestamp": str(message.sent_ms),
            "ApproximateReceiveCount": str(message.receive_count),
            "ApproximateFirstReceiveTimestamp": str(message.first_receive_ms),
        }
        entry["Attributes"] = attributes if "All" in wanted else {k: v for k, v in attributes.items() if k in wanted}
    return entry


def _query_error_reply(code: str, message: str, request_id: str) -> _Reply:
    body = (
        f'<ErrorResponse xmlns="{_SNS_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return _Reply(400, body.encode(), _XML)


class _Pending:
    """One request's place in its connection's answer order: its reply once known, or the task computing it."""

    __slots__ = ("keep_alive", "reply", "task")

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive
        self.reply: _Reply | None = None
        self.task: asyncio.Task[_Reply] | None = None


class _FakeHttpProtocol(asyncio.Protocol):
    """HTTP/1.1 for the fake, lean: httptools parses, `FakeAws` answers, one write per response.

    The fake shares its 2 cores with what a benchmark measures, so it keeps its own cost low: served through
    uvicorn's ASGI cycle (scope, message dicts, a cycle object per request) it spent 1.75 times the CPU per
    SendEmail (BENCHMARKS.md, fifth session). A send (SES, SNS) is answered by a timer when its latency is over,
    with no task of its own; SQS and the admin routes run as a task each (`FakeAws.answer`). Keep-alive,
    pipelined requests (answered in order), chunked bodies, `Expect: 100-continue` and `Connection: close` are
    handled; a request httptools cannot parse gets a 400 and the connection is closed.
    """

    def __init__(self, fake: FakeAws, tasks: set[asyncio.Task[_Reply]]) -> None:
        self._fake = fake
        self._tasks = tasks
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._answers: deque[_Pending] = deque()
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        for pending in self._answers:
            if pending.task is not None:
                pending.task.cancel()
        self._answers.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(b"upgrades are not supported")
        except httptools.HttpParserError as exc:
            self._refuse(str(exc).encode())

    def _refuse(self, reason: bytes) -> None:
        if self._transport is not None and not self._closing:
            self._closing = True
            self._transport.write(_response(400, reason, b"text/plain", (), keep_alive=False))
            self._transport.close()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        if self._headers.get(b"expect", b"").lower() == b"100-continue" and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        url = httptools.parse_url(self._url)
        method = self._parser.get_method().decode()
        path = unquote(url.path.decode())
        headers = self._headers
        body = b"".join(self._body)
        pending = _Pending(self._parser.should_keep_alive())
        self._answers.append(pending)
        fake = self._fake
        if fake.answered_now(method, path, headers):
            # A send: answered when its latency is over, by a timer rather than a task and a sleep.
            latency_s = fake.config.latency_s
            if latency_s > 0:
                self._loop.call_later(latency_s, self._answer_now, pending, method, path, headers, body)
            else:
                self._answer_now(pending, method, path, headers, body)
            return
        task = self._loop.create_task(fake.answer(method, path, url.query or b"", headers, body))
        pending.task = task
        self._tasks.add(task)
        task.add_done_callback(self._answered)

    def _answer_now(self, pending: _Pending, method: str, path: str, headers: dict[bytes, bytes], body: bytes) -> None:
        if self._transport is None:
            return  # the connection is gone, and its answers with it
        pending.reply = self._fake.answer_now(method, path, headers, body)
        self._write_ready()

    def _answered(self, task: asyncio.Task[_Reply]) -> None:
        self._tasks.discard(task)
        self._write_ready()

    def _write_ready(self) -> None:
        """Write the answers that are ready, in the order their requests came."""
        while self._answers and self._transport is not None and not self._closing:
            pending = self._answers[0]
            task = pending.task
            if task is not None:
                if not task.done():
                    return
                if task.cancelled():
                    self._answers.popleft()
                    continue
                failure = task.exception()
                if failure is not None:
                    pending.reply = _Reply(500, orjson.dumps({"message": f"fake AWS failed: {failure!r}"}))
                else:
                    pending.reply = task.result()
            reply = pending.reply
            if reply is None:
                return
            self._answers.popleft()
            self._transport.write(
                _response(reply.status, reply.body, reply.content_type, reply.headers, pending.keep_alive)
            )
            if not pending.keep_alive:
                self._closing = True
                self._transport.close()


def _response(
    status: int, body: bytes, content_type: bytes, headers: tuple[tuple[bytes, bytes], ...], keep_alive: bool
) -> bytes:
    parts = [
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
        % (status, _PHRASES.get(status, b"Unknown"), content_type, len(body))
    ]
    parts += [name + b": " + value + b"\r\n" for name, value in headers]
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts += [b"\r\n", body]
    return b"".join(parts)


_PHRASES = {status.value: status.phrase.encode() for status in http.HTTPStatus}


async def serve(fake: FakeAws, sock: socket.socket, started: Callable[[], None] | None = None) -> None:
    """Serve `fake` on a bound socket until cancelled; `started` is called once it listens."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[_Reply]] = set()
    server = await loop.create_server(lambda: _FakeHttpProtocol(fake, tasks), sock=sock)
    try:
        if started is not None:
            started()
        await server.serve_forever()
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class FakeAwsServer:
    """Serve a `FakeAws` on a local port from a background thread; use as a context manager in tests."""

    def __init__(self, config: FakeAwsConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fake = create_fake_aws(config)
        self.url = ""
        self._address = (host, port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serving: asyncio.Task[None] | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def start(self, timeout_s: float = 10.0) -> str:
        """Start serving (port 0 picks a free one) and return the base URL once it listens."""
        self._socket = _listen(*self._address)
        host, port = self._socket.getsockname()[:2]
        self._started.clear()
        self._thread = threading.Thread(target=self._run, name="fake-aws", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout_s):
            self.stop()
            raise RuntimeError("fake AWS server did not start")
        self.url = f"http://{host}:{port}"
        return self.url

    def _run(self) -> None:
        async def main() -> None:
            assert self._socket is not None
            self._loop = asyncio.get_running_loop()
            self._serving = asyncio.current_task()
            with suppress(asyncio.CancelledError):
                await serve(self.fake, self._socket, self._started.set)

        asyncio.run(main())

    def stop(self) -> None:
        """Stop serving and wait for the thread to finish."""
        if self._loop is not None and self._serving is not None:
            with suppress(RuntimeError):  # the loop has already finished
                self._loop.call_soon_threadsafe(self._serving.cancel)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._loop = self._serving = self._thread = self._socket = None

    def __enter__(self) -> FakeAwsServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def main(argv: list[str] | None = None) -> None:
    """Serve the fake AWS endpoint (on uvloop when installed)."""
    parser = argparse.ArgumentParser(
        prog="python -m notify.testing.fake_aws", description="Serve a fake SES v2 / SNS / SQS endpoint."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every AWS answer")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction of sends answered with throttling")
    parser.add_argument("--seed", type=int, default=None, help="seed for the error draw")
    parser.add_argument("--fail-first-n", type=int, default=0, help="throttle the first N sends")
    parser.add_argument("--max-recorded", type=int, default=100_000, help="recent emails / SMS kept for inspection")
    parser.add_argument("--visibility-timeout-s", type=float, default=30.0, help="SQS default visibility timeout")
    parser.add_argument("--sqs-max-wait-s", type=float, default=0.0, help="cap on SQS long polls of an empty queue")
    parser.add_argument("--queue", action="append", default=[], help="SQS queue to create (repeatable)")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    fake = create_fake_aws(
        FakeAwsConfig(
            latency_s=args.latency_ms / 1000,
            error_rate=args.error_rate,
            seed=args.seed,
            fail_first_n=args.fail_first_n,
            max_recorded=args.max_recorded,
            sqs_visibility_timeout_s=args.visibility_timeout_s,
            sqs_max_wait_s=args.sqs_max_wait_s,
            queues=tuple(args.queue),
        )
    )
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sock = _listen(args.host, args.port)
    with suppress(KeyboardInterrupt):
        _run_loop(serve(fake, sock))


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop  # optional: the fake runs on asyncio's own loop without it
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


if __name__ == "__main__":
    main()
