from __future__ import annotations

import time
import uuid
from pathlib import Path

import aioboto3
import pytest
import redis
from arq.connections import RedisSettings as ArqRedisSettings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from notify.embedded import (
    UNIX_SOCKET_PATH_MAX,
    EmbeddedAws,
    EmbeddedPostgres,
    EmbeddedRedis,
    sent_emails,
    sns_published,
)
from notify.job_queue import create_queue
from notify.redis import CommandBatcher, create_redis
from notify.settings import RedisSettings

REGION = "eu-west-2"


async def _scalar(url: str, *statements: str) -> object:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            results = [await conn.execute(text(sql)) for sql in statements]
            return results[-1].scalar() if results[-1].returns_rows else None
    finally:
        await engine.dispose()


async def test_postgres_url_reaches_the_notify_database_and_data_survives_restart(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg")
    try:
        url = pg.start()
        assert url.startswith("postgresql+asyncpg://postgres@/notify?host=/")
        assert pg.is_running()
        assert await _scalar(url, "select current_database()") == "notify"
        await _scalar(url, "create table kept (v int)", "insert into kept values (42)")

        assert pg.start() == url  # idempotent while running, database already exists

        pg.stop()
        assert not pg.is_running()
        with pytest.raises(FileNotFoundError):  # the server removed its socket: nothing answers while stopped
            await _scalar(url, "select 1")

        assert pg.restart() == url
        assert pg.is_running()
        assert await _scalar(url, "select v from kept") == 42

        # A second handle on the same data dir (another `notify dev` run) finds the data and can stop the server.
        pg.stop(mode="immediate")
        other = EmbeddedPostgres(tmp_path / "pg")
        assert other.start() == url
        assert await _scalar(url, "select v from kept") == 42
        other.stop()
        assert not pg.is_running()
    finally:
        pg.stop()


def _get(url: str, key: str) -> str | None:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        value = client.get(key)
        assert value is None or isinstance(value, str)
        return value
    finally:
        client.close()


def _set(url: str, key: str, value: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.set(key, value)
    finally:
        client.close()


def test_redis_aof_keeps_writes_across_restart_and_kill(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    try:
        url = server.start()
        assert url == f"redis://127.0.0.1:{server.port}/0"
        _set(url, "graceful", "1")
        assert server.restart() == url
        assert _get(url, "graceful") == "1"

        _set(url, "crash", "2")
        # appendfsync everysec: after a second the write is on disk even if the process is SIGKILLed.
        time.sleep(1.2)
        server.kill()
        assert not server.is_running()
        assert server.start() == url
        assert _get(url, "crash") == "2"
        assert (tmp_path / "redis" / "appendonly.aof").stat().st_size > 0
    finally:
        server.stop()


def test_redis_without_aof_loses_writes_on_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "volatile", appendonly=False)
    try:
        url = server.start()
        _set(url, "k", "v")
        server.restart()
        assert _get(url, "k") is None
    finally:
        server.stop()


async def test_redis_on_a_unix_socket_serves_every_client_and_keeps_its_data(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "sock", unix_socket=True)
    try:
        url = server.start()
        assert url == f"unix://{tmp_path / 'sock' / 'redis.sock'}?db=0"
        assert (tmp_path / "sock" / "redis.sock").is_socket()
        _set(url, "k", "v")
        assert _get(f"redis://127.0.0.1:{server.port}/0", "k") == "v"  # the same server, on TCP for tools

        # What the API and the workers open from REDIS_URL: redis-py's pool (with the hiredis packing), the
        # API's command batcher, and arq's queue, whose settings come from the same URL.
        client = create_redis(RedisSettings(url=url), client_name="test")
        async with CommandBatcher(client) as batcher:
            assert await batcher.execute_command("GET", "k") == b"v"
        await client.aclose()
        arq_settings = ArqRedisSettings.from_dsn(url)
        assert (arq_settings.unix_socket_path, arq_settings.database) == (str(server.socket_path), 0)
        queue = await create_queue(arq_settings)
        try:
            assert await queue.enqueue_job("deliver_email", ["an-id"], _job_id="unix-socket") is not None
            assert await queue.zcard("arq:queue") == 1
        finally:
            await queue.aclose()

        assert server.restart() == url
        assert _get(url, "k") == "v"

        # Stopped, the socket is gone: clients fail as they do on a refused TCP port, which the outage paths handle.
        server.stop()
        client = create_redis(RedisSettings(url=url), client_name="test")
        async with CommandBatcher(client) as batcher:
            with pytest.raises(redis.exceptions.ConnectionError):
                await batcher.execute_command("GET", "k")
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.get("k")
        await client.aclose()
    finally:
        server.stop()


def test_redis_keeps_tcp_where_a_unix_socket_path_would_not_fit(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / ("d" * UNIX_SOCKET_PATH_MAX), unix_socket=True)
    assert server.socket_path is None
    try:
        url = server.start()
        assert url == f"redis://127.0.0.1:{server.port}/0"
        _set(url, "k", "v")
        assert _get(url, "k") == "v"
    finally:
        server.stop()


def test_redis_refuses_a_port_another_redis_holds_and_shows_the_log(tmp_path: Path) -> None:
    first = EmbeddedRedis(tmp_path / "first")
    try:
        first.start()
        second = EmbeddedRedis(tmp_path / "second", port=first.port)
        # The first server answers on that port, but start() must not mistake it for the second one.
        with pytest.raises(RuntimeError, match="Address already in use"):
            second.start()
        assert not second.is_running()
        assert first.is_running()
    finally:
        first.stop()


async def test_moto_endpoint_accepts_ses_and_sns_sends(tmp_path: Path) -> None:
    aws = EmbeddedAws(region=REGION)
    try:
        url = aws.start()
        assert url == f"http://127.0.0.1:{aws.port}"
        env = aws.env()
        session = aioboto3.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_REGION"],
        )
        subject = f"hello {uuid.uuid4()}"
        async with session.client("sesv2", endpoint_url=env["AWS_ENDPOINT_URL"]) as ses:
            await ses.create_email_identity(EmailIdentity="notify.example.com")
            response = await ses.send_email(
                FromEmailAddress="sender@notify.example.com",
                Destination={"ToAddresses": ["someone@example.com"]},
                Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": "body"}}}},
            )
        sent = [message for message in sent_emails(REGION) if getattr(message, "subject", None) == subject]
        assert [message.id for message in sent] == [response["MessageId"]]
        assert sent[0].destinations == {"ToAddresses": ["someone@example.com"]}

        text_body = f"code {uuid.uuid4()}"
        async with session.client("sns", endpoint_url=env["AWS_ENDPOINT_URL"]) as sns:
            await sns.publish(PhoneNumber="+447700900123", Message=text_body)
        assert ("+447700900123", text_body) in sns_published(REGION)
    finally:
        aws.stop()
