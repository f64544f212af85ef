"""aioboto3 session and client factories (one long-lived client per service per process)."""

from __future__ import annotations

from typing import Any

import aioboto3
from aiobotocore.config import AioConfig

from notify.settings import AwsSettings

# Quick retries per call (botocore standard mode; its `max_attempts` counts retries: 3 calls in all).
# The lean senders retry the same way (notify.delivery.lean).
QUICK_RETRIES = 2


def create_session(settings: AwsSettings) -> aioboto3.Session:
    """Create the process's AWS session; credentials come from settings or the standard AWS chain."""
    secret = settings.secret_access_key.get_secret_value() if settings.secret_access_key else None
    return aioboto3.Session(
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=secret,
        region_name=settings.region,
    )


def client_kwargs(settings: AwsSettings) -> dict[str, Any]:
    """Arguments for `session.client(...)`: endpoint, and a pool as large as the send concurrency.

    botocore's default `max_pool_connections=10` caps sending at a few hundred per second (DESIGN §10).
    """
    config = AioConfig(
        max_pool_connections=settings.max_pool_connections,
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.send_timeout_s,
        retries={"mode": "standard", "max_attempts": QUICK_RETRIES},
    )
    kwargs: dict[str, Any] = {"config": config, "region_name": settings.region}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
    return kwargs
