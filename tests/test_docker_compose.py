"""The docker-compose stack and Dockerfile are wired as the docs promise (no Docker engine needed: parsed only)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from notify.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
NOTIFY_COMMANDS = {"api", "worker", "migrate", "dev", "admin"}
NOTIFY_SERVICES = ("migrate", "api", "worker")
LONG_RUNNING = ("postgres", "redis", "aws", "api", "worker")
DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(compose, dict)
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _option(command: list[str], name: str) -> str:
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def _expand(value: str) -> str:
    """Resolve `${VAR:-default}` the way compose does when VAR is unset."""
    return DEFAULTED.sub(lambda match: match.group(2), value)


def test_the_six_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"postgres", "redis", "aws", "migrate", "api", "worker"}


def test_redis_persists_accepted_notifications_with_aof_everysec(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    assert str(redis["image"]).startswith("redis:7")
    command = _command(redis)
    assert command[0] == "redis-server"
    assert _option(command, "--appendonly") == "yes"
    assert _option(command, "--appendfsync") == "everysec"
    assert any(str(volume).endswith(":/data") for volume in redis["volumes"]), "the AOF must live on a volume"


def test_postgres_keeps_its_data_on_a_volume(services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    assert str(postgres["image"]).startswith("postgres:16")
    assert any(str(volume).endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]], name: str) -> None:
    test = services[name].get("healthcheck", {}).get("test")
    assert isinstance(test, list), f"{name} has no healthcheck"
    assert test[0] in {"CMD", "CMD-SHELL"}
    assert len(test) > 1


def test_migrate_runs_once(services: dict[str, dict[str, Any]]) -> None:
    # A migrate container that restarts after exiting 0 never counts as completed for its dependants.
    assert services["migrate"].get("restart", "no") == "no"


@pytest.mark.parametrize("name", NOTIFY_SERVICES)
def test_notify_services_run_existing_commands_of_the_built_image(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    assert service["build"] in {".", "./"} or service["build"]["context"] in {".", "./"}
    assert _command(service)[0] == name
    assert _command(service)[0] in NOTIFY_COMMANDS


def test_api_listens_where_it_is_published_and_checked(services: dict[str, dict[str, Any]]) -> None:
    api = services["api"]
    command = _command(api)
    assert _option(command, "--host") == "0.0.0.0"
    port = _option(command, "--port")
    assert int(_option(command, "--workers")) >= 2
    assert any(str(mapping).endswith(f":{port}") for mapping in api["ports"])
    assert f"localhost:{port}/healthz" in " ".join(api["healthcheck"]["test"])


@pytest.mark.parametrize("name", NOTIFY_SERVICES)
def test_notify_services_point_at_the_compose_backends(services: dict[str, dict[str, Any]], name: str) -> None:
    environment = _environment(services[name])
    database = urlsplit(environment["DATABASE_URL"])
    redis = urlsplit(environment["REDIS_URL"])
    aws = urlsplit(environment["AWS_ENDPOINT_URL"])
    assert (database.scheme, database.hostname, database.port) == ("postgresql+asyncpg", "postgres", 5432)
    assert database.path == "/" + services["postgres"]["environment"]["POSTGRES_DB"]
    assert database.username == services["postgres"]["environment"]["POSTGRES_USER"]
    assert database.password == services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)
    assert (aws.hostname, aws.port) == ("aws", 5000)
    assert any(str(mapping).endswith(":5000") for mapping in services["aws"]["ports"])
    assert environment["AWS_REGION"] == "eu-west-2"
    assert environment["NOTIFY_LOG_FORMAT"] == "json"


def test_api_worker_and_migrate_share_overridable_secrets(services: dict[str, dict[str, Any]]) -> None:
    for variable in ("NOTIFY_API__SECRET_KEY", "NOTIFY_API__ADMIN_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        values = {_environment(services[name])[variable] for name in NOTIFY_SERVICES}
        assert len(values) == 1, f"{variable} differs between services: {values}"
        match = DEFAULTED.fullmatch(values.pop())
        assert match is not None, f"{variable} must be `${{{variable}:-default}}` so production can set it"
        assert match.group(1) == variable
    secret_default = DEFAULTED.fullmatch(_environment(services["api"])["NOTIFY_API__SECRET_KEY"])
    assert secret_default is not None
    assert len(secret_default.group(2).encode()) >= 32, "HS256 keys shorter than 32 bytes are rejected as weak"


def test_api_and_worker_wait_for_migrations_and_healthy_redis(services: dict[str, dict[str, Any]]) -> None:
    for name in ("api", "worker"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"
        assert depends_on["redis"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["aws"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", NOTIFY_SERVICES)
def test_settings_read_from_the_compose_environment(
    services: dict[str, dict[str, Any]], name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for variable in ("NOTIFY_DB__URL", "NOTIFY_REDIS__URL", "NOTIFY_AWS__ENDPOINT_URL", "NOTIFY_AWS__REGION"):
        monkeypatch.delenv(variable, raising=False)
    environment = {key: _expand(value) for key, value in _environment(services[name]).items()}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)

    settings = Settings()

    assert settings.db.url == environment["DATABASE_URL"]
    assert settings.redis.url == environment["REDIS_URL"]
    assert settings.aws.endpoint_url == environment["AWS_ENDPOINT_URL"]
    assert settings.aws.region == "eu-west-2"
    assert settings.api.secret_key.get_secret_value() == environment["NOTIFY_API__SECRET_KEY"]
    assert settings.api.admin_token is not None
    assert settings.api.admin_token.get_secret_value() == environment["NOTIFY_API__ADMIN_TOKEN"]
    assert settings.api.base_url == "http://localhost:8000"
    assert settings.log_format == "json"


def test_dockerfile_installs_the_package_as_a_non_root_notify_entrypoint() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    installs = [line for line in instructions if line.startswith("RUN") and "pip install" in line]
    assert installs, "the image must pip install the package"
    assert any(re.search(r"pip install \.(\s|$)", line) for line in installs)
    assert not any(" -e " in line or "--editable" in line for line in installs)
    copied = {part for line in instructions if line.startswith("COPY") for part in line.split()[1:-1]}
    assert {"pyproject.toml", "src", "alembic.ini", "alembic"} <= copied
    users = [line.split()[1] for line in instructions if line.startswith("USER")]
    assert users, "the image must not run as root"
    assert users[-1] not in {"root", "0"}
    assert 'ENTRYPOINT ["notify"]' in instructions
