"""`notify dev`: embedded servers, migrations, a seeded demo, and API + worker in one process (DESIGN §9, §11)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from rich.console import Console
from rich.panel import Panel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notify import aws, logging, migrations
from notify.admin import service as admin
from notify.app import local_server
from notify.auth.keys import SecretBox, format_key
from notify.auth.models import ApiKey
from notify.db import create_engine, create_sessionmaker, transaction
from notify.embedded import EmbeddedAws, EmbeddedPostgres, EmbeddedRedis
from notify.receipts import setup as receipt_setup
from notify.services import repository as service_repository
from notify.settings import Settings
from notify.templates.models import Template

DEMO_SERVICE = "Demo service"
console = Console(stderr=True)


@dataclass(frozen=True)
class Demo:
    """What `notify dev` seeds: a service, a key and two templates."""

    service_id: str
    key: str
    email_template_id: str
    sms_template_id: str


def run(*, port: int, with_worker: bool, reset: bool, data_dir: Path) -> None:
    """Start what is missing, prepare the database and serve until Ctrl-C."""
    data_dir = data_dir.resolve()
    if reset and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    env_file = data_dir / "dev.env"
    env_file.unlink(missing_ok=True)
    previous = {k: v for k, v in dotenv_values(data_dir / "dev.secrets").items() if v is not None}
    secret_key = previous.get("NOTIFY_API__SECRET_KEY") or os.urandom(24).hex()
    (data_dir / "dev.secrets").write_text(f"NOTIFY_API__SECRET_KEY={secret_key}\n")

    postgres = redis_server = aws_server = None
    env: dict[str, str] = {"NOTIFY_API__SECRET_KEY": secret_key, "NOTIFY_API__BASE_URL": f"http://127.0.0.1:{port}"}
    if not os.environ.get("DATABASE_URL"):
        postgres = EmbeddedPostgres(data_dir / "postgres")
        env["DATABASE_URL"] = postgres.start()
    if not os.environ.get("REDIS_URL"):
        redis_server = EmbeddedRedis(data_dir / "redis", port=_saved_port(previous, "REDIS_PORT"), unix_socket=True)
        env["REDIS_URL"] = redis_server.start()
        (data_dir / "dev.secrets").write_text(f"NOTIFY_API__SECRET_KEY={secret_key}\nREDIS_PORT={redis_server.port}\n")
    if not os.environ.get("AWS_ENDPOINT_URL"):
        aws_server = EmbeddedAws(region=os.environ.get("AWS_REGION", "eu-west-2"))
        aws_server.start()
        env.update(aws_server.env())
    for name, value in env.items():
        os.environ.setdefault(name, value)
    settings = Settings()
    logging.configure("console", settings.log_level)
    try:
        migrations.upgrade(settings.db.url)
        demo = asyncio.run(_prepare(settings, verify_identity=aws_server is not None))

        def ready() -> None:
            _write_env(env_file, settings, env, demo, port)
            _banner(settings, demo, port, data_dir, env_file)

        asyncio.run(_serve(settings, port, with_worker, ready))
    finally:
        env_file.unlink(missing_ok=True)
        if aws_server:
            aws_server.stop()
        if redis_server:
            redis_server.stop()
        if postgres:
            postgres.stop()


def _saved_port(previous: dict[str, str], name: str) -> int | None:
    value = previous.get(name)
    return int(value) if value and value.isdigit() else None


async def _prepare(settings: Settings, *, verify_identity: bool) -> Demo:
    if verify_identity:
        session = aws.create_session(settings.aws)
        async with session.client("sesv2", **aws.client_kwargs(settings.aws)) as ses:
            await ses.create_email_identity(EmailIdentity=settings.aws.email_domain)
        await receipt_setup.ensure_receipt_wiring(settings.aws)
        async with session.client("s3", **aws.client_kwargs(settings.aws)) as s3:
            # us-east-1 is the one region S3 refuses as an explicit location constraint.
            bucket: dict[str, Any] = {"Bucket": settings.aws.attachments_bucket}
            if settings.aws.region != "us-east-1":
                bucket["CreateBucketConfiguration"] = {"LocationConstraint": settings.aws.region}
            await s3.create_bucket(**bucket)
    engine = create_engine(settings.db, application_name="notify.dev")
    box = SecretBox(settings.api.secret_key.get_secret_value())
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            service = await service_repository.get_by_name(session, DEMO_SERVICE)
            if service is None:
                service = await admin.create_service(session, name=DEMO_SERVICE, email_from="demo")
                new_key = await admin.create_key(session, box, service.id, name="demo")
                email = await admin.create_template(
                    session,
                    service.id,
                    template_type="email",
                    name="Welcome email",
                    subject="Hello ((name))",
                    content="Hi ((name)),\n\nThis email was sent by **notify**.\n\n((details??Here are the details.))",
                )
                sms = await admin.create_template(
                    session, service.id, template_type="sms", name="Code SMS", content="Your code is ((code))"
                )
                return Demo(str(service.id), new_key.key, str(email.id), str(sms.id))
            return await _existing_demo(session, box, service.id)
    finally:
        await engine.dispose()


async def _existing_demo(session: AsyncSession, box: SecretBox, service_id: uuid.UUID) -> Demo:
    key = await session.scalar(
        select(ApiKey).where(ApiKey.service_id == service_id, ApiKey.revoked_at.is_(None)).order_by(ApiKey.created_at)
    )
    secret = box.decrypt(key.secret_encrypted) if key else None
    if key is None or secret is None:
        raise SystemExit("The demo key cannot be read (secret changed?): run `notify dev --reset`.")
    templates = (await session.scalars(select(Template).where(Template.service_id == service_id))).all()
    by_type = {template.template_type: str(template.id) for template in templates}
    return Demo(str(service_id), format_key(key.name, key.service_id, secret), by_type["email"], by_type["sms"])


def _write_env(env_file: Path, settings: Settings, env: dict[str, str], demo: Demo, port: int) -> None:
    values = {
        "DATABASE_URL": settings.db.url,
        "REDIS_URL": settings.redis.url,
        "AWS_REGION": settings.aws.region,
        **{k: v for k, v in env.items() if k.startswith("AWS_")},
        "NOTIFY_API__SECRET_KEY": settings.api.secret_key.get_secret_value(),
        "NOTIFY_API__BASE_URL": f"http://127.0.0.1:{port}",
        "NOTIFY_AWS__EMAIL_DOMAIN": settings.aws.email_domain,
        "NOTIFY_API_KEY": demo.key,
        "NOTIFY_BASE_URL": f"http://127.0.0.1:{port}",
        "NOTIFY_SERVICE_ID": demo.service_id,
        "NOTIFY_EMAIL_TEMPLATE_ID": demo.email_template_id,
        "NOTIFY_SMS_TEMPLATE_ID": demo.sms_template_id,
    }
    if settings.aws.endpoint_url:
        values["AWS_ENDPOINT_URL"] = settings.aws.endpoint_url
    tmp = env_file.with_suffix(".tmp")
    tmp.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    tmp.replace(env_file)  # appears whole, once everything is ready (DESIGN §11)


def _banner(settings: Settings, demo: Demo, port: int, data_dir: Path, env_file: Path) -> None:
    base = f"http://127.0.0.1:{port}"
    console.print(
        Panel.fit(
            f"[bold]notify dev[/bold] is ready\n\n"
            f"API          {base}\n"
            f"Docs         {base}/docs\n"
            f"API key      [bold]{demo.key}[/bold]\n"
            f"Service      {demo.service_id}\n"
            f"Templates    email {demo.email_template_id}\n"
            f"             sms   {demo.sms_template_id}\n"
            f"Data         {data_dir}\n"
            f"Environment  {env_file}  (set -a; . {env_file}; set +a)\n\n"
            f"Send an email:\n"
            f"  curl -s {base}/v2/notifications/email -H 'Authorization: ApiKey-v1 {demo.key}' \\\n"
            f"    -H 'Content-Type: application/json' \\\n"
            f'    -d \'{{"email_address": "you@example.com", "template_id": "{demo.email_template_id}", '
            f'"personalisation": {{"name": "you"}}}}\'\n\n'
            f"Or with the Notify Python client (pip install notifications-python-client):\n"
            f"  from notifications_python_client.notifications import NotificationsAPIClient\n"
            f"  client = NotificationsAPIClient('{demo.key}', base_url='{base}')\n"
            f"  client.send_email_notification(email_address='you@example.com',\n"
            f"      template_id='{demo.email_template_id}', personalisation={{'name': 'you'}})\n\n"
            f"Press Ctrl-C to stop.",
            title="notify",
        )
    )


async def _serve(settings: Settings, port: int, with_worker: bool, ready: Callable[[], None]) -> None:
    from notify.worker import build_worker

    server = local_server(settings, port)
    worker = build_worker(settings) if with_worker else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server_task = asyncio.create_task(server.serve())
    worker_task = asyncio.create_task(worker.async_run()) if worker else None
    while not server.started and not server_task.done():  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    if server_task.done():
        await server_task  # it failed to start (port taken?): show why
        return
    ready()
    await stop.wait()
    console.print("Stopping…")
    server.should_exit = True
    with contextlib.suppress(Exception):
        await server_task
    if worker and worker_task:
        worker_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await worker_task
        await worker.close()
