"""Settings: standard variable names, nesting, and .env.example listing every setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from notify.settings import STANDARD_VARIABLES, Settings

ROOT = Path(__file__).resolve().parents[1]
_VARIABLE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def _all_variables() -> set[str]:
    names = {"NOTIFY_ENV", "NOTIFY_LOG_FORMAT", "NOTIFY_LOG_LEVEL"}
    for group, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.update(f"NOTIFY_{group.upper()}__{name.upper()}" for name in annotation.model_fields)
    return names


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    listed = set(_VARIABLE.findall((ROOT / ".env.example").read_text()))
    expected = _all_variables() | set(STANDARD_VARIABLES)
    assert expected - listed == set(), "settings missing from .env.example"
    assert listed - expected == set(), ".env.example names settings that do not exist"


def test_standard_variables_fill_the_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/n")
    monkeypatch.setenv("REDIS_URL", "redis://r:6379/1")
    monkeypatch.setenv("AWS_REGION", "ca-central-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://aws:5000")
    monkeypatch.setenv("SENTRY_DSN", "https://key@sentry.example/1")
    settings = Settings(_env_file=None)
    assert settings.db.url == "postgresql://u@db:5432/n"
    assert settings.redis.url == "redis://r:6379/1"
    assert settings.aws.region == "ca-central-1"
    assert settings.aws.endpoint_url == "http://aws:5000"
    assert settings.sentry.dsn == "https://key@sentry.example/1"


def test_prefixed_variables_win_over_standard_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://standard/n")
    monkeypatch.setenv("NOTIFY_DB__URL", "postgresql://prefixed/n")
    monkeypatch.setenv("NOTIFY_WORKER__INFLIGHT_TIMEOUT_S", "5")
    settings = Settings(_env_file=None)
    assert settings.db.url == "postgresql://prefixed/n"
    assert settings.worker.inflight_timeout_s == 5
    assert settings.worker.replay_after_s == 600


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in STANDARD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("REDIS_URL=redis://from-dotenv:6379/0\nNOTIFY_API__PORT=9001\n")
    settings = Settings(_env_file=str(env_file))
    assert settings.redis.url == "redis://from-dotenv:6379/0"
    assert settings.api.port == 9001
