"""SQLAlchemy base, engine and session factory."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, Result, TextClause, event, func, text
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from notify.settings import DbSettings, sqlalchemy_url

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}


class TimestampedMixin:
    """`created_at` / `updated_at` columns set by the database."""

    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


def new_id() -> uuid.UUID:
    """Return a new random UUID for a primary key."""
    return uuid.uuid4()


def create_engine(settings: DbSettings, application_name: str) -> AsyncEngine:
    """Create the process's engine, labelled so `pg_stat_activity` shows who is connected."""
    return _engine(settings, application_name, settings.plan_cache_mode, settings.pool_size)


def create_save_engine(settings: DbSettings, application_name: str) -> AsyncEngine | None:
    """Create a worker's engine for saving batches: autocommit, and foreign-key check plans cached (or None).

    An inbox batch is saved by one INSERT, atomic on its own, so it needs no BEGIN and COMMIT around it: on these
    connections it is one round trip instead of four (BEGIN, `SET LOCAL plan_cache_mode`, INSERT, COMMIT), on
    the path of every notification from accepted to sent. Their `plan_cache_mode` is `auto` from the start, for
    the foreign-key checks (see `cache_foreign_key_check_plans`); only statements that read no table, or one
    row by its key, may run here. None when `save_pool_size` is 0 or `plan_cache_mode` is left to the server.
    """
    if settings.save_pool_size <= 0 or not settings.plan_cache_mode:
        return None
    engine = _engine(settings, application_name, "auto", settings.save_pool_size)
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _engine(settings: DbSettings, application_name: str, plan_cache_mode: str, pool_size: int) -> AsyncEngine:
    server_settings = {"application_name": application_name}
    if plan_cache_mode:
        server_settings["plan_cache_mode"] = plan_cache_mode
    connect_args: dict[str, Any] = {"server_settings": server_settings, "command_timeout": settings.command_timeout_s}
    engine = create_async_engine(
        sqlalchemy_url(settings.url),
        pool_size=pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_s,
        pool_use_lifo=settings.pool_use_lifo,
        echo=settings.echo,
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine, "checkout", refuse_closed_connection)
    return engine


def refuse_closed_connection(dbapi_connection: Any, _record: object, _proxy: object) -> None:
    """Pool checkout hook: a connection the server has closed is replaced, and the rest of the pool with it.

    When PostgreSQL restarts, or ends a backend (`pg_terminate_backend`, `idle_session_timeout`), it tells the
    client and closes the socket, and asyncpg marks the connection closed as soon as the event loop reads that:
    checking the flag costs nothing. SQLAlchemy's `pool_pre_ping` instead sends BEGIN, an empty query and
    ROLLBACK on every checkout, three round trips that cost more than a small transaction's own work
    (BENCHMARKS.md, ninth session). A connection dropped without a word (a network partition) fails its next
    statement; SQLAlchemy then renews the whole pool, and the job that ran it is retried.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise InvalidatePoolError("the server closed this connection")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Create the session factory (`expire_on_commit=False`, STYLE)."""
    return async_sessionmaker(engine, expire_on_commit=False)


_CACHED_CHECK_PLANS = text("SET LOCAL plan_cache_mode = auto")


async def cache_foreign_key_check_plans(session: AsyncSession) -> None:
    """Let PostgreSQL reuse the plan of its foreign-key check for each row this transaction inserts.

    PostgreSQL checks a foreign key with a parameterised query per inserted row, a cached plan like our own
    statements: under the connections' `force_custom_plan` it is planned again for every row, about 10 µs of
    PostgreSQL's CPU a row. That query's plan is a primary-key lookup whatever the tables hold, so the
    transactions that insert rows in batches let plans be cached for the rest of the transaction (`auto`,
    PostgreSQL's default). The statements those transactions run read no table, or read one by its key
    (tests/test_query_plans.py checks the job chunk's under generic plans).
    """
    await session.execute(_CACHED_CHECK_PLANS)


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[object]]) -> None:
    """Run `callback` once the `transaction()` block that owns `session` has committed (never on rollback)."""
    session.info.setdefault("after_commit", []).append(callback)


@asynccontextmanager
async def transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Open a session, commit when the block succeeds, roll back when it raises; then run after-commit hooks."""
    async with sessionmaker() as session:
        async with session.begin():
            yield session
        for callback in session.info.pop("after_commit", []):
            await callback()


_NESTED_LOOPS_OFF = text("SET LOCAL enable_nestloop = off")
_NESTED_LOOPS_BACK = text("SET LOCAL enable_nestloop TO DEFAULT")


@dataclass(frozen=True, slots=True)
class BatchJoin:
    """A statement that joins rows of a table to a batch passed as arrays (`FROM unnest(:ids, …) AS u`).

    Its guards make PostgreSQL expect a handful of rows, so left alone it picks a nested loop, which then unnests
    the arrays again, or sorts the whole id array again, for every row: a batch costs its size squared (5 to 10 ms
    for 150 rows where 1 ms does). With nested loops off for the statement, it reads the rows by key and the
    arrays once, and joins them by hash. The setting is put back as soon as the statement has run, unless the
    caller says the statement ends the transaction (`last`): the commit puts it back then, a statement sooner. On
    an error the transaction's rollback puts it back.
    """

    statement: TextClause

    async def execute(self, session: AsyncSession, params: Mapping[str, Any], *, last: bool = False) -> Result[Any]:
        """Run the statement in the session's transaction and return its (already fetched) result.

        `last=True` only when nothing but the commit follows it in the transaction.
        """
        await session.execute(_NESTED_LOOPS_OFF)
        result = await session.execute(self.statement, dict(params))
        if not last:
            await session.execute(_NESTED_LOOPS_BACK)
        return result


def batch_join(sql: str) -> BatchJoin:
    """Declare a statement that joins table rows to a batch of arrays (see `BatchJoin`)."""
    return BatchJoin(text(sql))
