"""The `notify` command line (DESIGN §1)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from notify import migrations
from notify.admin import service as admin
from notify.auth.keys import SecretBox
from notify.db import create_engine, create_sessionmaker, transaction
from notify.errors import NotifyError
from notify.redis import create_redis
from notify.settings import Settings

app = typer.Typer(help="notify: email and SMS notifications, Notify v2 compatible.", no_args_is_help=True)
admin_app = typer.Typer(help="Manage services, API keys and templates.", no_args_is_help=True)
service_app = typer.Typer(help="Services.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
template_app = typer.Typer(help="Templates.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
admin_app.add_typer(service_app, name="service")
admin_app.add_typer(key_app, name="key")
admin_app.add_typer(template_app, name="template")

console = Console()
T = TypeVar("T")


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="API port.")] = 8000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Run the API only.")] = False,
    reset: Annotated[bool, typer.Option("--reset", help="Wipe the dev data first.")] = False,
    data_dir: Annotated[Path, typer.Option(help="Where embedded servers keep their data.")] = Path(".notify"),
) -> None:
    """Run everything on this machine with zero set-up: embedded PostgreSQL, Redis and AWS, API and worker."""
    from notify.devserver import run as run_dev

    run_dev(port=port, with_worker=not no_worker, reset=reset, data_dir=data_dir)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[int | None, typer.Option(help="uvicorn worker processes.")] = None,
) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    settings = Settings()
    from notify import logging

    logging.configure(settings.log_format, settings.log_level)
    uvicorn.run(
        "notify.asgi:app",
        host=host or settings.api.host,
        port=port or settings.api.port,
        workers=workers or settings.api.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        timeout_graceful_shutdown=30,
    )


@app.command()
def worker(burst: Annotated[bool, typer.Option("--burst", help="Drain what is due, then exit.")] = False) -> None:
    """Run one arq worker: every job and cron job."""
    from notify import worker as worker_module

    worker_module.run(Settings(), burst=burst)


@app.command()
def migrate() -> None:
    """Apply database migrations (alembic upgrade head)."""
    settings = Settings()
    migrations.upgrade(settings.db.url)
    console.print("[green]Database is up to date.[/green]")


def _run(action: Callable[[Settings, AsyncSession], Awaitable[T]]) -> T:
    settings = Settings()

    async def main() -> T:
        engine = create_engine(settings.db, application_name="notify.admin")
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                return await action(settings, session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except NotifyError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(code=1) from exc


@service_app.command("create")
def service_create(
    name: Annotated[str, typer.Option(help="Service name (unique).")],
    email_from: Annotated[str | None, typer.Option(help="Local part of the From address.")] = None,
    restricted: Annotated[bool, typer.Option(help="Trial mode: team and test keys only.")] = False,
    rate_limit: Annotated[int | None, typer.Option(help="Requests per minute per key type.")] = None,
    email_daily_limit: Annotated[int | None, typer.Option(help="Emails per day.")] = None,
    sms_daily_limit: Annotated[int | None, typer.Option(help="Text messages per day.")] = None,
) -> None:
    """Create a service and print its id."""

    async def action(_: Settings, session: AsyncSession) -> uuid.UUID:
        service = await admin.create_service(
            session,
            name=name,
            email_from=email_from,
            restricted=restricted,
            rate_limit=rate_limit,
            email_daily_limit=email_daily_limit,
            sms_daily_limit=sms_daily_limit,
        )
        return service.id

    typer.echo(str(_run(action)))


@service_app.command("update")
def service_update(
    service_id: Annotated[uuid.UUID, typer.Argument(help="Service id.")],
    rate_limit: Annotated[int | None, typer.Option(help="Requests per minute per key type.")] = None,
    email_daily_limit: Annotated[int | None, typer.Option(help="Emails per day.")] = None,
    sms_daily_limit: Annotated[int | None, typer.Option(help="Text messages per day.")] = None,
    active: Annotated[bool | None, typer.Option("--active/--suspended", help="Resume or suspend.")] = None,
) -> None:
    """Change a service's limits, or suspend/resume it."""

    async def action(settings: Settings, session: AsyncSession) -> None:
        redis = create_redis(settings.redis, client_name="notify.admin")
        try:
            await admin.update_service(
                session,
                redis,
                service_id,
                rate_limit=rate_limit,
                email_daily_limit=email_daily_limit,
                sms_daily_limit=sms_daily_limit,
                active=active,
            )
        finally:
            await redis.aclose()

    _run(action)
    console.print("[green]Updated.[/green]")


@service_app.command("list")
def service_list() -> None:
    """List services."""

    async def action(_: Settings, session: AsyncSession) -> list[tuple[str, ...]]:
        return [
            (str(s.id), s.name, "yes" if s.active else "no", "yes" if s.restricted else "no", str(s.rate_limit))
            for s in await admin.list_services(session)
        ]

    table = Table("id", "name", "active", "restricted", "rate limit")
    for row in _run(action):
        table.add_row(*row)
    console.print(table)


@key_app.command("create")
def key_create(
    service: Annotated[uuid.UUID, typer.Option("--service", help="Service id.")],
    name: Annotated[str, typer.Option(help="Key name.")],
    key_type: Annotated[str, typer.Option("--type", help="normal, team or test.")] = "normal",
) -> None:
    """Create an API key and print it (shown this once only)."""

    async def action(settings: Settings, session: AsyncSession) -> str:
        box = SecretBox(settings.api.secret_key.get_secret_value())
        return (await admin.create_key(session, box, service, name=name, key_type=key_type)).key

    typer.echo(_run(action))


@key_app.command("revoke")
def key_revoke(key_id: Annotated[uuid.UUID, typer.Argument(help="API key id.")]) -> None:
    """Revoke an API key."""

    async def action(settings: Settings, session: AsyncSession) -> None:
        redis = create_redis(settings.redis, client_name="notify.admin")
        try:
            await admin.revoke_key(session, redis, key_id)
        finally:
            await redis.aclose()

    _run(action)
    console.print("[green]Revoked.[/green]")


@template_app.command("create")
def template_create(
    service: Annotated[uuid.UUID, typer.Option("--service", help="Service id.")],
    template_type: Annotated[str, typer.Option("--type", help="email or sms.")],
    name: Annotated[str, typer.Option(help="Template name.")],
    content: Annotated[str, typer.Option(help="Body, with ((placeholders)).")],
    subject: Annotated[str | None, typer.Option(help="Email subject.")] = None,
    process_type: Annotated[str, typer.Option(help="priority, normal or bulk.")] = "normal",
) -> None:
    """Create a template and print its id."""

    async def action(_: Settings, session: AsyncSession) -> uuid.UUID:
        template = await admin.create_template(
            session,
            service,
            template_type=template_type,
            name=name,
            content=content,
            subject=subject,
            process_type=process_type,
        )
        return template.id

    typer.echo(str(_run(action)))


@template_app.command("update")
def template_update(
    template_id: Annotated[uuid.UUID, typer.Argument(help="Template id.")],
    name: Annotated[str | None, typer.Option(help="Template name.")] = None,
    content: Annotated[str | None, typer.Option(help="Body.")] = None,
    subject: Annotated[str | None, typer.Option(help="Email subject.")] = None,
    process_type: Annotated[str | None, typer.Option(help="priority, normal or bulk.")] = None,
) -> None:
    """Change a template (makes a new version) and print the version."""

    async def action(settings: Settings, session: AsyncSession) -> int:
        redis = create_redis(settings.redis, client_name="notify.admin")
        try:
            template = await admin.update_template(
                session, redis, template_id, name=name, content=content, subject=subject, process_type=process_type
            )
        finally:
            await redis.aclose()
        return template.version

    typer.echo(str(_run(action)))


def main() -> None:
    """Entry point of the `notify` script."""
    app()


if __name__ == "__main__":
    main()
