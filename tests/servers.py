"""The servers a test session runs against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from notify.embedded import EmbeddedAws, EmbeddedPostgres, EmbeddedRedis


@dataclass
class Servers:
    """URLs of the session's PostgreSQL, Redis and AWS, and the embedded servers behind them (if any)."""

    database_url: str
    redis_url: str
    aws_url: str
    postgres: EmbeddedPostgres | None
    redis: EmbeddedRedis | None
    aws: EmbeddedAws
    root: Path
