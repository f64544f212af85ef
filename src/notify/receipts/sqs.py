"""Lean SQS `ReceiveMessage` and `DeleteMessageBatch` for the receipt pollers (DESIGN §10).

Through aioboto3, each of these calls cost the poller about 1.4 ms of CPU in aiobotocore's generic pipeline
(event hooks, a user agent rebuilt per call, endpoint rules, aiohttp): 0.3 ms per receipt, which capped one
poller below 2,000 receipts/s. These two calls keep botocore's pieces — the client's own SQS model, endpoint and
region, its JSON serialiser and response parser, SigV4 with the session's credentials, the client's modeled
exceptions and the standard retry mode's conditions and backoff — and send over `notify.delivery.lean`'s HTTP
clients. They answer what the aioboto3 client answers and raise what it raises (tests/receipts/test_lean_sqs.py).
Every other SQS call stays on the aioboto3 client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import aiohttp
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.parsers import create_parser
from botocore.retries.standard import ExponentialBackoff, RetryContext, StandardRetryConditions
from botocore.serialize import create_serializer

from notify import aws
from notify.delivery.lean import Endpoint, LeanHttp, SessionCredentials, open_lean_http, sign
from notify.settings import AwsSettings


class ReceiptQueueClient(Protocol):
    """The two SQS calls a receipt poller makes once per round: aioboto3's client or `LeanSqsClient`."""

    async def receive_message(self, **params: Any) -> dict[str, Any]:
        """SQS ReceiveMessage."""
        ...

    async def delete_message_batch(self, **params: Any) -> dict[str, Any]:
        """SQS DeleteMessageBatch."""
        ...


class LeanSqsClient:
    """`receive_message` and `delete_message_batch` as the aioboto3 SQS client `client` makes them, leaner."""

    def __init__(
        self, client: Any, credentials: SessionCredentials, http: LeanHttp, backoff: ExponentialBackoff | None = None
    ) -> None:
        model = client.meta.service_model
        self._model = model
        self._exceptions = client.exceptions
        self._credentials = credentials
        self._http = http
        self.endpoint = Endpoint(
            client.meta.endpoint_url.rstrip("/") + "/", model.signing_name, client.meta.region_name
        )
        self._serializer = create_serializer(model.protocol, include_validation=False)
        self._parser = create_parser(model.protocol)
        self._retryable = StandardRetryConditions(max_attempts=aws.QUICK_RETRIES + 1)
        self._backoff = backoff or ExponentialBackoff()  # botocore's: random() * 2^(attempt-1) s, at most 20 s

    async def receive_message(self, **params: Any) -> dict[str, Any]:
        """SQS ReceiveMessage: the parsed answer, as aioboto3 returns it."""
        return await self._call("ReceiveMessage", params)

    async def delete_message_batch(self, **params: Any) -> dict[str, Any]:
        """SQS DeleteMessageBatch: the parsed answer (`Successful`, `Failed`), as aioboto3 returns it."""
        return await self._call("DeleteMessageBatch", params)

    async def _call(self, operation_name: str, params: dict[str, Any]) -> dict[str, Any]:
        operation = self._model.operation_model(operation_name)
        serialized = self._serializer.serialize_to_request(params, operation)
        attempt = 1
        while True:
            parsed: dict[str, Any] | None = None
            http_response: AWSResponse | None = None
            caught: Exception | None = None
            # Signed per attempt, as botocore does: a retry after a backoff carries a fresh date.
            request = sign(await self._credentials.frozen(), self.endpoint, serialized["body"], serialized["headers"])
            try:
                status, headers, body = await self._http.post(self.endpoint, request)
            except TimeoutError as exc:  # before OSError, which it subclasses; aiobotocore raises the same
                caught = ReadTimeoutError(endpoint_url=self.endpoint.url, error=exc)
            except (aiohttp.ClientError, OSError) as exc:
                caught = EndpointConnectionError(endpoint_url=self.endpoint.url, error=exc)
            else:
                response = {"status_code": status, "headers": headers, "body": body}
                parsed = self._parser.parse(response, operation.output_shape)
                if status < 300:
                    return parsed
                http_response = AWSResponse(self.endpoint.url, status, headers, None)
            context = RetryContext(
                attempt_number=attempt,
                operation_model=operation,
                parsed_response=parsed,
                http_response=http_response,
                caught_exception=caught,
            )
            if not self._retryable.is_retryable(context):
                break
            await asyncio.sleep(self._backoff.delay_amount(context))
            attempt += 1
        if caught is not None:
            raise caught
        assert parsed is not None
        error = parsed.get("Error", {})
        # botocore's SQS hook prefers the query-compatible code (e.g. AWS.SimpleQueueService.NonExistentQueue).
        code = error.get("QueryErrorCode") or error.get("Code")
        raise self._exceptions.from_code(code)(parsed, operation_name)


@asynccontextmanager
async def open_receipt_client(session: Any, settings: AwsSettings, client: Any) -> AsyncIterator[ReceiptQueueClient]:
    """Yield what the pollers receive and delete with: the lean calls, or `client` itself if `lean_receipts` is off."""
    if not settings.lean_receipts:
        yield client
        return
    async with open_lean_http(settings) as http:
        yield LeanSqsClient(client, SessionCredentials(session), http)
