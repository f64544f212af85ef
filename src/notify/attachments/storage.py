"""The S3 adapter for attachments: one long-lived aioboto3 client per process, opened on first use."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import quote

from notify import aws
from notify.settings import AwsSettings

# S3 DeleteObjects takes at most 1,000 keys per call.
DELETE_BATCH = 1000


class AttachmentStorage:
    """Put, get, delete and pre-sign attachment objects in the attachments bucket."""

    def __init__(self, settings: AwsSettings) -> None:
        self._settings = settings
        self.bucket = settings.attachments_bucket
        self._client: Any = None
        self._stack = AsyncExitStack()
        self._lock = asyncio.Lock()

    async def client(self) -> Any:
        """Return the S3 client, creating it on first use (most processes never send a file)."""
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    session = aws.create_session(self._settings)
                    self._client = await self._stack.enter_async_context(
                        session.client("s3", **aws.client_kwargs(self._settings))
                    )
        return self._client

    async def aclose(self) -> None:
        """Close the client if it was opened."""
        await self._stack.aclose()
        self._client = None

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store one object, encrypted at rest."""
        client = await self.client()
        await client.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, ServerSideEncryption="AES256"
        )

    async def get(self, key: str) -> bytes:
        """Return one object's bytes; raises botocore's ClientError (NoSuchKey) when it is missing."""
        client = await self.client()
        response = await client.get_object(Bucket=self.bucket, Key=key)
        async with response["Body"] as body:
            data = await body.read()
        return bytes(data)

    async def delete(self, keys: Sequence[str]) -> int:
        """Delete the objects (missing ones are no error); return how many keys were sent to S3."""
        if not keys:
            return 0
        client = await self.client()
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            await client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
            )
        return len(keys)

    async def presign(self, key: str, filename: str, expires_s: int) -> str:
        """Return a time-limited GET URL that downloads the object under its filename."""
        client = await self.client()
        url = await client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            },
            ExpiresIn=expires_s,
        )
        return str(url)
