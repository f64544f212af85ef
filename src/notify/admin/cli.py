"""`notify admin reply-to …` and `notify admin sms-sender …`: a service's reply-to addresses and SMS senders."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.ext.asyncio import AsyncSession

from notify.admin import senders
from notify.settings import Settings

Runner = Callable[[Callable[[Settings, AsyncSession, Redis], Awaitable[Any]]], Any]

ServiceOption = Annotated[uuid.UUID, typer.Option("--service", help="Service id.")]
DefaultOption = Annotated[bool, typer.Option("--default", help="Make it the service's default.")]


def register(admin_app: typer.Typer, run: Runner, console: Console) -> None:
    """Add the `reply-to` and `sms-sender` command groups to `notify admin`; `run` runs one transaction."""
    reply_to_app = typer.Typer(help="Reply-to addresses of a service's emails.", no_args_is_help=True)
    sms_sender_app = typer.Typer(help="Senders a service's text messages come from.", no_args_is_help=True)
    admin_app.add_typer(reply_to_app, name="reply-to")
    admin_app.add_typer(sms_sender_app, name="sms-sender")

    @reply_to_app.command("add")
    def reply_to_add(
        service: ServiceOption,
        email_address: Annotated[str, typer.Argument(help="Reply-to email address.")],
        default: DefaultOption = False,
    ) -> None:
        """Add a reply-to address and print its id (the `email_reply_to_id` of a request)."""

        async def action(_: Settings, session: AsyncSession, redis: Redis) -> uuid.UUID:
            return (await senders.add_reply_to(session, redis, service, email_address, is_default=default)).id

        typer.echo(str(run(action)))

    @reply_to_app.command("list")
    def reply_to_list(service: ServiceOption) -> None:
        """List a service's reply-to addresses."""

        async def action(_: Settings, session: AsyncSession, __: Redis) -> list[tuple[str, str, str]]:
            return [
                (str(r.id), r.email_address, "yes" if r.is_default else "")
                for r in await senders.list_reply_tos(session, service)
            ]

        _print(console, run(action), "email address")

    @sms_sender_app.command("add")
    def sms_sender_add(
        service: ServiceOption,
        sender: Annotated[str, typer.Argument(help="Up to 11 letters and digits, or an international number.")],
        default: DefaultOption = False,
    ) -> None:
        """Add an SMS sender and print its id (the `sms_sender_id` of a request)."""

        async def action(_: Settings, session: AsyncSession, redis: Redis) -> uuid.UUID:
            return (await senders.add_sms_sender(session, redis, service, sender, is_default=default)).id

        typer.echo(str(run(action)))

    @sms_sender_app.command("list")
    def sms_sender_list(service: ServiceOption) -> None:
        """List a service's SMS senders."""

        async def action(_: Settings, session: AsyncSession, __: Redis) -> list[tuple[str, str, str]]:
            return [
                (str(s.id), s.sms_sender, "yes" if s.is_default else "")
                for s in await senders.list_sms_senders(session, service)
            ]

        _print(console, run(action), "sender")


def _print(console: Console, rows: list[tuple[str, str, str]], value_header: str) -> None:
    table = Table("id", value_header, "default")
    for row in rows:
        table.add_row(*(Text(value) for value in row))
    console.print(table)
