"""One validated Settings object, read from the environment and `.env` (DESIGN §6, §11)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# Standard variables users and tools already know, mapped onto the nested groups (DESIGN §11).
STANDARD_VARIABLES: dict[str, tuple[str, str]] = {
    "DATABASE_URL": ("db", "url"),
    "REDIS_URL": ("redis", "url"),
    "AWS_REGION": ("aws", "region"),
    "AWS_ENDPOINT_URL": ("aws", "endpoint_url"),
    "SENTRY_DSN": ("sentry", "dsn"),
}


# Types a file may have, by sniffed content (see notify.attachments.sniff).
ATTACHMENT_TYPES = (
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "text/csv",
    "text/plain",
    "application/json",
)

# Smoke-test recipients (GC Notify's defaults): accepted with a 201, never stored, sent or counted (DESIGN §4.6).
SIMULATED_EMAILS = (
    "simulate-delivered@notification.canada.ca",
    "simulate-delivered-2@notification.canada.ca",
    "simulate-delivered-3@notification.canada.ca",
)
SIMULATED_NUMBERS = ("+16132532222", "+16132532223", "+16132532224")


class DbSettings(BaseModel):
    """PostgreSQL connection and pool."""

    url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/notify"
    pool_size: int = 10
    max_overflow: int = 5
    pool_timeout_s: float = 10.0
    # Hand out the connection returned last: a process's load stays on a few connections whose PostgreSQL
    # backends are warm, instead of waking every backend of the pool in turn (BENCHMARKS.md, thirteenth session).
    pool_use_lifo: bool = True
    command_timeout_s: float = 30.0
    echo: bool = False
    # Plan each statement for the table as it is now: a generic plan cached while `notifications` was small
    # keeps walking the whole table once a bulk job has filled it. Empty: the server's own setting (for poolers
    # that refuse startup parameters).
    plan_cache_mode: str = "force_custom_plan"
    # Each worker saves inbox batches on connections of its own, each batch as one statement in autocommit (one
    # round trip instead of four), with `plan_cache_mode=auto` set when they connect (see `db.create_save_engine`).
    # 0, or an empty `plan_cache_mode` (a pooler that refuses startup parameters): the save takes a transaction
    # on the worker's main pool and sets it with SET LOCAL.
    save_pool_size: int = 4


class RedisSettings(BaseModel):
    """Redis connection (streams, arq queue, limits, caches)."""

    url: str = "redis://127.0.0.1:6379/0"
    max_connections: int = 200
    socket_timeout_s: float = 5.0
    retry_after_s: int = 5
    # The API sends the Redis commands of concurrent requests (limits script, XADD) in one write per loop turn.
    batch_commands: bool = True
    # The limits script also adds the accepted entry to its inbox stream: one round trip per POST instead of two.
    # Turn off when Redis routes keys by hash slot (Redis Cluster, a slot-aware proxy): the inbox streams and a
    # service's limit keys are then on different slots, which one script cannot touch together.
    append_in_limits_script: bool = True


class AwsSettings(BaseModel):
    """Amazon SES v2 / SNS / SQS / S3."""

    region: str = "eu-west-2"
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    ses_configuration_set: str | None = None
    email_domain: str = "notify.example.com"
    sms_sender_id: str | None = None
    max_pool_connections: int = 100
    send_concurrency: int = 100
    lean_sender: bool = True
    lean_http: bool = True
    send_timeout_s: float = 15.0
    connect_timeout_s: float = 5.0
    ses_bounce_topic: str = "notify-ses-bounces"
    ses_delivery_topic: str = "notify-ses-deliveries"
    sms_receipt_topic: str = "notify-sms-receipts"
    bounce_queue: str = "notify-ses-bounces"
    delivery_queue: str = "notify-ses-deliveries"
    sms_receipt_queue: str = "notify-sms-receipts"
    receipt_max_receive_count: int = 4
    receipt_visibility_timeout_s: int = 300
    receipt_wait_time_s: int = 1
    receipt_poll_budget_s: float = 50.0
    receipt_receive_concurrency: int = Field(default=16, ge=1)
    lean_receipts: bool = True
    attachments_bucket: str = "notify-attachments"
    attachment_link_expiry_s: int = 604_800


class ApiSettings(BaseModel):
    """The HTTP API."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    base_url: str = "http://localhost:8000"
    secret_key: SecretStr = SecretStr("change-me-in-production-please-32-bytes-min")
    admin_token: SecretStr | None = None
    cache_ttl_s: float = 30.0
    jwt_leeway_s: int = 30
    page_size: int = 250
    fast_lane: bool = True
    coalesce_writes: bool = True
    nice: int = Field(0, ge=0, le=19)
    idempotency_ttl_s: int = 86_400
    idempotency_lock_s: int = 30
    simulated_emails: list[str] = Field(default_factory=lambda: list(SIMULATED_EMAILS))
    simulated_numbers: list[str] = Field(default_factory=lambda: list(SIMULATED_NUMBERS))


class WorkerSettings(BaseModel):
    """The arq worker, its batches and its recovery timings (plain seconds so drills can shrink them)."""

    batch_size: int = 500
    batch_wait_ms: int = 30
    beat_interval_s: float = 1.0
    poll_delay_s: float = 0.05
    max_jobs: int = 8
    job_timeout_s: int = 300
    inflight_timeout_s: int = 60
    replay_after_s: int = 600
    send_lease_s: int = 600
    job_stall_after_s: int = 300
    job_chunk_size: int = 500
    job_send_hold_s: int = 60
    job_process_timeout_s: int = 3600
    scheduled_batch_size: int = 10_000
    max_save_attempts: int = 5
    inflight_check_interval_s: int = 60
    replay_interval_s: int = 300
    replay_chunk_size: int = 500
    replay_max_rows: int = 100_000
    timeout_after_s: int = 259_200
    timeout_hour_utc: int = 3
    sending_pause_s: int = 60
    retry_budget_s: int = 14_400
    retry_base_delay_s: float = 10.0
    retry_max_delay_s: float = 900.0
    callback_timeout_s: float = 5.0
    callback_max_retries: int = 5
    callback_retry_base_delay_s: float = 30.0
    callback_suspend_after: int = 25
    retention_batch_size: int = 5000
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    shutdown_grace_s: int = 25


class LimitsSettings(BaseModel):
    """Defaults for per-service limits (DESIGN §4.4)."""

    rate_limit: int = 1000
    rate_interval_s: int = 60
    email_daily_limit: int = 250_000
    sms_daily_limit: int = 250_000
    personalisation_max_bytes: int = 51_200
    sms_max_chars: int = 612
    bulk_max_rows: int = 50_000
    attachment_max_bytes: int = 10 * 1024 * 1024
    attachments_max_count: int = 10
    email_max_bytes: int = 40 * 1024 * 1024
    attachment_types: list[str] = Field(default_factory=lambda: list(ATTACHMENT_TYPES))


class SentrySettings(BaseModel):
    """Error reporting."""

    dsn: str | None = None
    environment: str = "development"


class Settings(BaseSettings):
    """Every setting of a notify process; build once at the entry point and pass down."""

    model_config = SettingsConfigDict(
        env_prefix="NOTIFY_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: str = "development"
    log_format: str = Field(default="json", pattern="^(json|console)$")
    log_level: str = "INFO"
    db: DbSettings = DbSettings()
    redis: RedisSettings = RedisSettings()
    aws: AwsSettings = AwsSettings()
    api: ApiSettings = ApiSettings()
    worker: WorkerSettings = WorkerSettings()
    limits: LimitsSettings = LimitsSettings()
    sentry: SentrySettings = SentrySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Let `NOTIFY_*` win over the standard names, and both over `.env`."""
        return (
            init_settings,
            env_settings,
            StandardVariablesSource(settings_cls, getattr(dotenv_settings, "env_file", None)),
            dotenv_settings,
            file_secret_settings,
        )


class StandardVariablesSource(PydanticBaseSettingsSource):
    """Read DATABASE_URL, REDIS_URL, AWS_REGION, AWS_ENDPOINT_URL and SENTRY_DSN into their groups."""

    def __init__(self, settings_cls: type[BaseSettings], env_file: object) -> None:
        super().__init__(settings_cls)
        self._env_file = env_file

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        """Unused: this source maps whole variables in `__call__`."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """Return the nested values found in the environment and the dotenv file."""
        values: dict[str, str | None] = {}
        if isinstance(self._env_file, str | Path) and Path(self._env_file).is_file():
            values.update(dotenv_values(self._env_file))
        values.update(os.environ)
        found: dict[str, Any] = {}
        for variable, (group, field) in STANDARD_VARIABLES.items():
            value = values.get(variable)
            if value:
                found.setdefault(group, {})[field] = value
        return found


def sqlalchemy_url(url: str) -> str:
    """Return `url` with the asyncpg driver, accepting plain `postgres://` / `postgresql://` URLs."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+asyncpg://" + url[len(scheme) :]
    return url
