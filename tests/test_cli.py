"""The `notify` command line: admin commands against the test servers, and `notify dev` as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values

from notify.embedded import UNIX_SOCKET_PATH_MAX, free_port
from notify.settings import Settings
from tests.cli_runner import invoke
from tests.servers import Servers


@pytest.fixture
def cli_env(servers: Servers, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", servers.database_url)
    monkeypatch.setenv("REDIS_URL", servers.redis_url)
    monkeypatch.setenv("NOTIFY_API__SECRET_KEY", settings.api.secret_key.get_secret_value())
    monkeypatch.chdir(servers.root)  # no stray .env


def invoke_ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.output.strip()


@pytest.mark.usefixtures("cli_env")
def test_admin_commands_create_a_working_service() -> None:
    service_id = invoke_ok("admin", "service", "create", "--name", "CLI service", "--rate-limit", "50")
    uuid.UUID(service_id)
    assert "CLI service" in invoke_ok("admin", "service", "list")
    key = invoke_ok("admin", "key", "create", "--service", service_id, "--name", "ci")
    assert key.startswith("notify-ci-")
    assert key[-73:-37] == service_id
    template_id = invoke_ok(
        "admin", "template", "create", "--service", service_id, "--type", "sms", "--name", "t", "--content", "Hi ((x))"
    )
    uuid.UUID(template_id)
    assert invoke_ok("admin", "template", "update", template_id, "--content", "Hello ((x))") == "2"
    invoke_ok("admin", "service", "update", service_id, "--email-daily-limit", "10")


@pytest.mark.usefixtures("cli_env")
def test_admin_errors_are_clear_and_exit_non_zero() -> None:
    service_id = invoke_ok("admin", "service", "create", "--name", "Trial", "--restricted")
    result = invoke("admin", "key", "create", "--service", service_id, "--name", "live")
    assert result.exit_code == 1
    assert "Trial (restricted) services can only create team or test keys" in result.output
    missing = invoke("admin", "key", "revoke", str(uuid.uuid4()))
    assert missing.exit_code == 1
    assert "No API key" in missing.output


def test_notify_dev_serves_a_first_notification(tmp_path: Path) -> None:
    """`notify dev` on a clean machine: embedded servers, seeded demo, dev.env, a notification sent, clean stop."""
    port = free_port()
    data_dir = tmp_path / ".notify"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "AWS_ENDPOINT_URL")}
    process = subprocess.Popen(
        [sys.executable, "-m", "notify.cli", "dev", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        env_file = data_dir / "dev.env"
        deadline = time.monotonic() + 90
        while not env_file.exists():
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "notify dev did not get ready"
            time.sleep(0.2)
        values = dotenv_values(env_file)
        for name in ("DATABASE_URL", "REDIS_URL", "AWS_ENDPOINT_URL", "NOTIFY_API_KEY", "NOTIFY_EMAIL_TEMPLATE_ID"):
            assert values.get(name), name
        socket_path = data_dir.resolve() / "redis" / "redis.sock"
        if len(bytes(socket_path)) <= UNIX_SOCKET_PATH_MAX:  # pytest's temporary directories are short enough
            assert values["REDIS_URL"] == f"unix://{socket_path}?db=0", "the embedded Redis is reached on its socket"
        base = values["NOTIFY_BASE_URL"]
        headers = {"Authorization": f"ApiKey-v1 {values['NOTIFY_API_KEY']}"}
        response = httpx.post(
            f"{base}/v2/notifications/email",
            headers=headers,
            json={
                "email_address": "you@example.com",
                "template_id": values["NOTIFY_EMAIL_TEMPLATE_ID"],
                "personalisation": {"name": "you"},
            },
        )
        assert response.status_code == 201, response.text
        notification_id = response.json()["id"]
        status = None
        while time.monotonic() < deadline:
            got = httpx.get(f"{base}/v2/notifications/{notification_id}", headers=headers)
            status = got.json().get("status") if got.status_code == 200 else None
            if status == "sending":
                break
            time.sleep(0.2)
        assert status == "sending"
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "notify dev" in output
    assert "NotificationsAPIClient(" in output, "the banner shows how to send with the Python client"
    assert not (data_dir / "dev.env").exists(), "dev.env is removed when the servers stop"
