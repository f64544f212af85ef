"""Each attachments test gets its own bucket on the session's moto server, and a verified sending domain."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from notify import aws
from notify.settings import Settings
from tests.conftest import make_settings
from tests.servers import Servers


@pytest.fixture
def settings(servers: Servers, clean: None) -> Settings:
    base = make_settings(servers)
    bucket = f"attachments-{uuid.uuid4().hex[:12]}"
    return make_settings(servers, aws=base.aws.model_copy(update={"attachments_bucket": bucket}))


@pytest.fixture
async def s3(settings: Settings) -> AsyncIterator[Any]:
    """A plain S3 client on the moto server, with the test's bucket created and the SES domain verified."""
    session = aws.create_session(settings.aws)
    async with session.client("sesv2", **aws.client_kwargs(settings.aws)) as ses:
        await ses.create_email_identity(EmailIdentity=settings.aws.email_domain)
    async with session.client("s3", **aws.client_kwargs(settings.aws)) as client:
        await client.create_bucket(
            Bucket=settings.aws.attachments_bucket,
            CreateBucketConfiguration={"LocationConstraint": settings.aws.region},
        )
        yield client


async def bucket_keys(s3: Any, settings: Settings) -> list[str]:
    """List every key in the test's bucket."""
    response = await s3.list_objects_v2(Bucket=settings.aws.attachments_bucket)
    return [item["Key"] for item in response.get("Contents", [])]
