"""Run alembic migrations programmatically (`notify migrate`, `notify dev`, the test suite)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config

from notify.settings import sqlalchemy_url


def alembic_ini() -> Path:
    """Find alembic.ini: the working directory first, then the source checkout this package lives in."""
    for candidate in (Path.cwd() / "alembic.ini", Path(__file__).resolve().parents[2] / "alembic.ini"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("alembic.ini not found: run notify migrate from the repository (or image) root")


def alembic_config(database_url: str) -> Config:
    """Return an alembic Config pointed at `database_url`."""
    config = Config(str(alembic_ini()))
    config.attributes["database_url"] = sqlalchemy_url(database_url)
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (in a thread of its own: alembic's env runs its own event loop)."""
    _in_thread(lambda: command.upgrade(alembic_config(database_url), revision))


def downgrade(database_url: str, revision: str) -> None:
    """Revert migrations down to `revision`."""
    _in_thread(lambda: command.downgrade(alembic_config(database_url), revision))


def _in_thread(action: Callable[[], None]) -> None:
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(action).result()
