"""Test harness: real embedded PostgreSQL and Redis, a moto server for AWS (DESIGN §9, STYLE "Tests")."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from notify import migrations
from notify.app import create_app
from notify.context import WorkerContext
from notify.db import create_engine
from notify.embedded import EmbeddedAws, EmbeddedPostgres, EmbeddedRedis
from notify.job_queue import JobQueue, create_queue
from notify.models import Base
from notify.settings import (
    ApiSettings,
    AwsSettings,
    DbSettings,
    RedisSettings,
    Settings,
    WorkerSettings,
    sqlalchemy_url,
)
from notify.worker import arq_redis_settings, worker_resources
from tests.servers import Servers

REGION = "eu-west-2"


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Start the embedded servers once per session (or use TEST_DATABASE_URL / TEST_REDIS_URL) and migrate."""
    root = tmp_path_factory.mktemp("servers")
    postgres = None if os.environ.get("TEST_DATABASE_URL") else EmbeddedPostgres(root / "pg")
    redis_server = None if os.environ.get("TEST_REDIS_URL") else EmbeddedRedis(root / "redis")
    aws = EmbeddedAws(region=REGION)
    database_url = postgres.start() if postgres else sqlalchemy_url(os.environ["TEST_DATABASE_URL"])
    redis_url = redis_server.start() if redis_server else os.environ["TEST_REDIS_URL"]
    aws_url = aws.start()
    for name, value in aws.env().items():
        os.environ.setdefault(name, value)
    migrations.upgrade(database_url)
    try:
        yield Servers(database_url, redis_url, aws_url, postgres, redis_server, aws, root)
    finally:
        aws.stop()
        if redis_server:
            redis_server.stop()
        if postgres:
            postgres.stop()


def make_settings(servers: Servers, **overrides: Any) -> Settings:
    """Build Settings for the test servers; `overrides` replace whole groups."""
    groups: dict[str, Any] = {
        "db": DbSettings(url=servers.database_url, pool_size=5, max_overflow=5),
        "redis": RedisSettings(url=servers.redis_url),
        "aws": AwsSettings(
            endpoint_url=servers.aws_url,
            region=REGION,
            access_key_id="testing",
            secret_access_key="testing",
            email_domain="notify.test",
        ),
        "api": ApiSettings(base_url="http://test", secret_key="test-secret-key-of-enough-length"),
        "worker": WorkerSettings(batch_wait_ms=0, retry_base_delay_s=0.05, retry_max_delay_s=0.2),
    }
    groups.update(overrides)
    return Settings(_env_file=None, log_format="console", **groups)


@pytest.fixture
def settings(servers: Servers, clean: None) -> Settings:
    return make_settings(servers)


@pytest.fixture(scope="session")
async def engine(servers: Servers) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(servers.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def one_connection_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine built as the processes build theirs (`notify.db.create_engine`), with a pool of one connection."""
    engine = create_engine(settings.db.model_copy(update={"pool_size": 1, "max_overflow": 0}), "test.one_connection")
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
async def redis(servers: Servers) -> AsyncIterator[Redis]:
    client = Redis.from_url(servers.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def clean(engine: AsyncEngine, redis: Redis) -> None:
    """Start every test that uses `settings` from empty tables and an empty Redis."""
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    await redis.flushdb()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as http:
        yield http


@pytest.fixture
async def queue(settings: Settings) -> AsyncIterator[JobQueue]:
    pool = await create_queue(arq_redis_settings(settings))
    yield pool
    await pool.aclose()


@pytest.fixture
async def worker_ctx(settings: Settings, queue: ArqRedis) -> AsyncIterator[WorkerContext]:
    async with worker_resources(settings, queue) as context:
        yield context


def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
