"""The `notify` command line (DESIGN §1)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.ext.asyncio import AsyncSession

from notify import job_queue, migrations
from notify import worker as worker_module
from notify.admin import cli as admin_cli
from notify.admin import safelist as admin_safelist
from notify.admin import service as admin
from notify.auth.keys import SecretBox
from notify.bench.cli import bench_app
from notify.db import create_engine, create_sessionmaker, transaction
from notify.errors import NotifyError
from notify.logging import configure as configure_logging
from notify.receipts import command as receipts_command
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
app.add_typer(bench_app, name="bench")
safelist_app = typer.Typer(help="Recipients team keys and trial services may send to.", no_args_is_help=True)
admin_app.add_typer(safelist_app, name="safelist")
dead_letters_app = typer.Typer(help="Inbox entries that could not be saved (dead:{type}:{lane}).", no_args_is_help=True)
admin_app.add_typer(dead_letters_app, name="dead-letters")
receipts_app = typer.Typer(help="The SQS receipt pollers (bounces, deliveries, SMS receipts).", no_args_is_help=True)
app.add_typer(receipts_app, name="receipts")

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
    from notify import serving
    from notify.http_protocol import uvicorn_http

    settings = Settings()
    from notify import logging

    logging.configure(settings.log_format, settings.log_level)
    serving.run(
        "notify.asgi:app",
        host=host or settings.api.host,
        port=port or settings.api.port,
        workers=workers or settings.api.workers,
        nice=settings.api.nice,
        loop="uvloop",
        http=uvicorn_http(settings.api.coalesce_writes),
        access_log=False,
        timeout_graceful_shutdown=30,
    )


@app.command()
def worker(burst: Annotated[bool, typer.Option("--burst", help="Drain what is due, then exit.")] = False) -> None:
    """Run one arq worker: every job and cron job."""
    worker_module.run(Settings(), burst=burst)


@app.command()
def status(
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until interrupted.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes with --watch.")] = 2.0,
) -> None:
    """Show each lane's inbox depth, in-flight and dead letters, and the last hour's notifications by status."""
    from notify.ops import status as ops_status

    ops_status.run(Settings(), console, watch=watch, interval_s=interval)


@app.command()
def migrate() -> None:
    """Apply database migrations (alembic upgrade head)."""
    settings = Settings()
    migrations.upgrade(settings.db.url)
    console.print("[green]Database is up to date.[/green]")


@receipts_app.command("poll")
def receipts_poll(
    queues: Annotated[
        list[receipts_command.ReceiptQueue] | None,
        typer.Option("--queue", help="Queue to drain (repeatable; default: all three)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per queue and line.")] = False,
) -> None:
    """Drain the receipt queues once now, as the worker's cron pollers do, and print what each run did."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)  # logs on stderr: stdout carries the results
    chosen = queues or list(receipts_command.ReceiptQueue)
    for run in asyncio.run(_poll_receipts(settings, chosen)):
        typer.echo(receipts_command.json_line(run) if as_json else receipts_command.text_line(run))


async def _poll_receipts(
    settings: Settings, queues: list[receipts_command.ReceiptQueue]
) -> list[receipts_command.QueueRun]:
    """Open the worker's resources (callbacks are enqueued on arq's queue), poll, close everything."""
    queue = await job_queue.create_queue(worker_module.arq_redis_settings(settings))
    try:
        async with worker_module.worker_resources(settings, queue) as context:
            return await receipts_command.poll_queues(context, queues)
    finally:
        await queue.aclose()


def _run(action: Callable[[Settings, AsyncSession, Redis], Awaitable[T]]) -> T:
    """Run an admin action in one transaction; cache invalidations are published after it commits."""
    settings = Settings()

    async def main() -> T:
        engine = create_engine(settings.db, application_name="notify.admin")
        redis = create_redis(settings.redis, client_name="notify.admin")
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                result = await action(settings, session, redis)
            return result
        finally:
            await redis.aclose()
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

    async def action(_: Settings, session: AsyncSession, __: Redis) -> uuid.UUID:
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

    async def action(settings: Settings, session: AsyncSession, redis: Redis) -> None:
        await admin.update_service(
            session,
            redis,
            service_id,
            rate_limit=rate_limit,
            email_daily_limit=email_daily_limit,
            sms_daily_limit=sms_daily_limit,
            active=active,
        )

    _run(action)
    console.print("[green]Updated.[/green]")


@service_app.command("list")
def service_list() -> None:
    """List services."""

    async def action(_: Settings, session: AsyncSession, __: Redis) -> list[tuple[str, ...]]:
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

    async def action(settings: Settings, session: AsyncSession, redis: Redis) -> str:
        box = SecretBox(settings.api.secret_key.get_secret_value())
        return (await admin.create_key(session, box, service, name=name, key_type=key_type)).key

    typer.echo(_run(action))


@key_app.command("revoke")
def key_revoke(key_id: Annotated[uuid.UUID, typer.Argument(help="API key id.")]) -> None:
    """Revoke an API key."""

    async def action(settings: Settings, session: AsyncSession, redis: Redis) -> None:
        await admin.revoke_key(session, redis, key_id)

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

    async def action(_: Settings, session: AsyncSession, __: Redis) -> uuid.UUID:
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

    async def action(settings: Settings, session: AsyncSession, redis: Redis) -> int:
        template = await admin.update_template(
            session, redis, template_id, name=name, content=content, subject=subject, process_type=process_type
        )
        return template.version

    typer.echo(str(_run(action)))


def _run_redis(action: Callable[[Redis], Awaitable[T]]) -> T:
    settings = Settings()

    async def main() -> T:
        redis = create_redis(settings.redis, client_name="notify.admin")
        try:
            return await action(redis)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(main())
    except NotifyError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(code=1) from exc


@dead_letters_app.command("list")
def dead_letters_list(
    stream: Annotated[str | None, typer.Option(help="One dead stream, e.g. dead:email:normal (default: all).")] = None,
    limit: Annotated[int, typer.Option(help="Most entries shown per stream.")] = 100,
) -> None:
    """List dead letters with the reason each could not be saved."""
    from notify.recovery import service as recovery

    letters = _run_redis(lambda redis: recovery.list_dead_letters(redis, stream, limit))
    table = Table("stream", "dead id", "inbox entry id", "reason")
    for letter in letters:
        # Text, not str: rich would read `:email:` in a stream name as an emoji and `[...]` in a reason as markup.
        table.add_row(*(Text(value) for value in (letter.stream, letter.dead_id, letter.entry_id, letter.reason)))
    console.print(table)
    console.print(f"{len(letters)} dead letter(s)")


@dead_letters_app.command("requeue")
def dead_letters_requeue(
    stream: Annotated[str | None, typer.Option(help="One dead stream, e.g. dead:email:normal (default: all).")] = None,
) -> None:
    """Add dead letters back to their inbox stream (and delete them from the dead stream)."""
    from notify.recovery import service as recovery

    count = _run_redis(lambda redis: recovery.requeue_dead_letters(redis, stream))
    console.print(f"Requeued {count} dead letter(s).")


@safelist_app.command("add")
def safelist_add(
    service: Annotated[uuid.UUID, typer.Option("--service", help="Service id.")],
    recipient: Annotated[str, typer.Argument(help="Email address or international phone number.")],
) -> None:
    """Let team keys (and a trial service) send to a recipient."""

    async def action(settings: Settings, session: AsyncSession, redis: Redis) -> str:
        return await admin_safelist.add(session, redis, service, recipient)

    typer.echo(_run(action))


@safelist_app.command("remove")
def safelist_remove(
    service: Annotated[uuid.UUID, typer.Option("--service", help="Service id.")],
    recipient: Annotated[str, typer.Argument(help="Email address or international phone number.")],
) -> None:
    """Take a recipient off the safelist."""

    async def action(settings: Settings, session: AsyncSession, redis: Redis) -> bool:
        return await admin_safelist.remove(session, redis, service, recipient)

    if not _run(action):
        console.print("[yellow]Not on the safelist.[/yellow]")
        raise typer.Exit(code=1)
    console.print("[green]Removed.[/green]")


@safelist_app.command("list")
def safelist_list(service: Annotated[uuid.UUID, typer.Option("--service", help="Service id.")]) -> None:
    """Show a service's safelist."""

    async def action(_: Settings, session: AsyncSession, __: Redis) -> list[str]:
        return list(await admin_safelist.list_entries(session, service))

    for recipient in _run(action):
        typer.echo(recipient)


callback_app = typer.Typer(help="Delivery-status and complaint callbacks to a service's own URL.", no_args_is_help=True)
admin_app.add_typer(callback_app, name="callback")


@callback_app.command("set")
def callback_set(
    service: Annotated[uuid.UUID, typer.Option("--service", help="Service id.")],
    url: Annotated[str, typer.Option("--url", help="https:// URL notify POSTs to.")],
    token: Annotated[str, typer.Option("--token", help="Bearer token sent with every callback.")],
    callback_type: Annotated[str, typer.Option("--type", help="delivery_status or complaint.")] = "delivery_status",
) -> None:
    """Create or replace a service's callback (a suspended callback is resumed)."""

    async def action(settings: Settings, session: AsyncSession, redis: Redis) -> uuid.UUID:
        box = SecretBox(settings.api.secret_key.get_secret_value())
        return await admin.set_callback(session, box, service, url=url, bearer_token=token, callback_type=callback_type)

    typer.echo(str(_run(action)))


@app.command()
def retry(
    ids: Annotated[list[uuid.UUID] | None, typer.Option("--id", help="Notification id (repeatable).")] = None,
    service: Annotated[uuid.UUID | None, typer.Option("--service", help="Service id.")] = None,
    status: Annotated[
        str | None, typer.Option(help="permanent-failure, technical-failure or temporary-failure.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Created at or after (ISO 8601, UTC if no offset).")] = None,
    until: Annotated[str | None, typer.Option(help="Created before (ISO 8601, UTC if no offset).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show how many and a sample; change nothing.")] = False,
    batch_size: Annotated[int, typer.Option(help="Rows reset and enqueued per transaction.")] = 500,
) -> None:
    """Send failed or bounced notifications again, by id or by service + status + time range."""
    from datetime import datetime

    from notify.errors import BadRequestError
    from notify.retry import command as retry_command
    from notify.retry import service as retry_service

    def iso(value: str, option: str) -> datetime:
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise typer.BadParameter(f"not an ISO 8601 date or time: {value!r}", param_hint=option) from exc

    try:
        if ids:
            selection: retry_service.Selection = retry_service.by_ids(ids)
        elif service and status and since and until:
            selection = retry_service.by_filter(service, status, iso(since, "--since"), iso(until, "--until"))
        else:
            raise BadRequestError("Give --id ID (repeatable), or --service, --status, --since and --until together")
        retry_command.run(Settings(), console, selection, dry_run=dry_run, batch_size=batch_size)
    except NotifyError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(code=1) from exc


admin_cli.register(admin_app, _run, console)


def main() -> None:
    """Entry point of the `notify` script."""
    app()


if __name__ == "__main__":
    main()
