"""The processes a benchmark measures: embedded servers, the fake AWS endpoint, API, workers, the bare endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from notify import migrations
from notify.admin import service as admin
from notify.auth.keys import SecretBox
from notify.db import create_engine, create_sessionmaker, transaction
from notify.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from notify.http_protocol import uvicorn_http
from notify.inbox.streams import ALL_STREAMS
from notify.ops import priority
from notify.settings import AwsSettings, DbSettings, RedisSettings, Settings, sqlalchemy_url

START_TIMEOUT_S = 60.0
UNLIMITED = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Seed:
    """The service, key and template every benchmark posts with."""

    service_id: uuid.UUID
    key: str
    email_template_id: uuid.UUID


def tree_cpu_s(pid: int) -> float:
    """Return user + system CPU seconds of a live process and its live descendants so far."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


@dataclass(frozen=True, slots=True)
class ServerProcess:
    """A server the bench did not start as a Managed group (embedded PostgreSQL, Redis): measured by its pid."""

    pid: int

    def cpu_s(self) -> float:
        """Return the CPU seconds of the server and its children (PostgreSQL's backends) so far."""
        return tree_cpu_s(self.pid)


@dataclass(slots=True)
class Managed:
    """A process group the bench started; it is stopped as a group."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def processes(self) -> list[psutil.Process]:
        """Return the process and its live descendants (uvicorn's workers included)."""
        try:
            root = psutil.Process(self.popen.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_s(self) -> float:
        """Return user + system CPU seconds of the group so far (live processes)."""
        return tree_cpu_s(self.popen.pid)

    def peak_rss_mib(self) -> list[float]:
        """Return each live process's peak resident set size (VmHWM) in MiB."""
        peaks: list[float] = []
        for process in self.processes():
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
        return peaks

    def priority(self) -> str:
        """Describe the top process's CPU priority: its nice value, and its autogroup's where Linux has autogroups."""
        try:
            now = priority.of_process(self.popen.pid)
        except ProcessLookupError:
            return "n/a (not running)"
        group = "" if now.autogroup_nice is None else f", its session's autogroup nice {now.autogroup_nice}"
        return f"nice {now.nice}{group}"

    def connections_per_process(self, port: int) -> list[int]:
        """Return how many established connections to `port` each serving process holds, most first.

        Each worker listens on a socket of its own (`notify.serving`) and Linux spreads connections by a hash of
        their addresses. Where uvicorn's processes share one socket instead, whichever wakes first accepts every
        connection waiting, and a load generator opening all its connections at once could leave one process
        with nearly all of them: about one core's worth, whatever the box has.
        """
        processes = self.processes()
        counts: list[int] = []
        for process in processes[1:] or processes:  # uvicorn's supervisor only listens; its workers serve
            with contextlib.suppress(psutil.Error):
                mine = [c for c in process.net_connections(kind="tcp") if c.laddr and c.laddr.port == port]
                if any(c.status == psutil.CONN_LISTEN for c in mine):  # a worker, not a helper process
                    counts.append(sum(1 for c in mine if c.status == psutil.CONN_ESTABLISHED))
        return sorted(counts, reverse=True)

    def alive(self) -> bool:
        """Return whether the top process still runs."""
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """Return the end of the process's output."""
        if not self.log.exists():
            return "(no output)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the group, then SIGKILL it if it lingers."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()


@dataclass
class BenchStack:
    """Everything one `notify bench` run starts, in a temporary directory, stopped in reverse on `close()`."""

    workdir: Path
    api_workers: int = 2
    worker_procs: int = 2
    ses_latency_ms: float = 20.0
    revision: str = "head"
    secret_key: str = field(default_factory=lambda: os.urandom(24).hex())
    database_url: str = ""
    redis_url: str = ""
    fake_url: str = ""
    api_url: str = ""
    bare_url: str = ""
    warnings: list[str] = field(default_factory=list)
    api: Managed | None = None
    bare: Managed | None = None
    fake: Managed | None = None
    workers: list[Managed] = field(default_factory=list)
    _postgres: EmbeddedPostgres | None = None
    _redis_server: EmbeddedRedis | None = None
    _engine: AsyncEngine | None = None
    _redis: Redis | None = None
    _fake_http: httpx.AsyncClient | None = None

    # -- servers -------------------------------------------------------------------------------------

    def server_processes(self) -> dict[str, list[ServerProcess | Managed]]:
        """Return the servers whose CPU the bench can attribute: the embedded ones and the fake AWS."""
        groups: dict[str, list[ServerProcess | Managed]] = {}
        if self._postgres is not None:
            postmaster = self._postgres.data_dir / "postmaster.pid"
            with contextlib.suppress(OSError, ValueError, IndexError):
                groups["PostgreSQL"] = [ServerProcess(int(postmaster.read_text().split()[0]))]
        if self._redis_server is not None and self._redis_server.pid is not None:
            groups["Redis"] = [ServerProcess(self._redis_server.pid)]
        if self.fake is not None:
            groups["fake AWS"] = [self.fake]
        return groups

    async def start_servers(self) -> None:
        """Start PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL are set) and the fake AWS; migrate."""
        if os.environ.get("DATABASE_URL"):
            self.database_url = sqlalchemy_url(os.environ["DATABASE_URL"])
        else:
            self._postgres = EmbeddedPostgres(self.workdir / "pg", database="notify_bench")
            self.database_url = await asyncio.to_thread(self._postgres.start)
        if os.environ.get("REDIS_URL"):
            self.redis_url = os.environ["REDIS_URL"]
        else:
            self._redis_server = EmbeddedRedis(self.workdir / "redis", unix_socket=True)
            self.redis_url = await asyncio.to_thread(self._redis_server.start)
        port = free_port()
        self.fake = self._spawn(
            "fake-aws",
            [
                *(sys.executable, "-m", "notify.testing.fake_aws", "--port", str(port)),
                *("--latency-ms", str(self.ses_latency_ms), "--max-recorded", "1000"),
                *(arg for queue in receipt_queues() for arg in ("--queue", queue)),
            ],
        )
        self.fake_url = f"http://127.0.0.1:{port}"
        await self._wait_http(self.fake, f"{self.fake_url}/_fake/stats")
        await asyncio.to_thread(self._migrate)
        self._engine = create_engine(DbSettings(url=self.database_url), application_name="notify.bench")
        self._redis = Redis.from_url(self.redis_url)

    @property
    def engine(self) -> AsyncEngine:
        """Return the bench's own database engine."""
        assert self._engine is not None, "start_servers() first"
        return self._engine

    @property
    def redis(self) -> Redis:
        """Return the bench's own Redis client."""
        assert self._redis is not None, "start_servers() first"
        return self._redis

    def env(self) -> dict[str, str]:
        """Return the environment of every notify process the bench starts."""
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "AWS_ENDPOINT_URL": self.fake_url,
            "AWS_REGION": "eu-west-2",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "NOTIFY_API__SECRET_KEY": self.secret_key,
            "NOTIFY_LOG_LEVEL": "WARNING",
        }

    def settings(self) -> Settings:
        """Return settings matching the processes' environment."""
        return Settings(
            db=DbSettings(url=self.database_url),
            redis=RedisSettings(url=self.redis_url),
            aws=AwsSettings(
                endpoint_url=self.fake_url,
                region="eu-west-2",
                access_key_id="testing",
                secret_access_key=SecretStr("testing"),
            ),
        )

    async def seed(self) -> Seed:
        """Create a service without limits, a normal key and an email template."""
        box = SecretBox(self.secret_key)
        async with transaction(create_sessionmaker(self.engine)) as session:
            service = await admin.create_service(
                session,
                name=f"bench {uuid.uuid4().hex[:8]}",
                email_from="bench",
                rate_limit=UNLIMITED,
                email_daily_limit=UNLIMITED,
                sms_daily_limit=UNLIMITED,
            )
            key = await admin.create_key(session, box, service.id, name="bench")
            template = await admin.create_template(
                session,
                service.id,
                template_type="email",
                name="bench email",
                subject="Hello ((name))",
                content="Hi ((name)),\n\nYour code is ((code)).",
            )
            return Seed(service.id, key.key, template.id)

    # -- notify processes ----------------------------------------------------------------------------

    async def start_api(self) -> None:
        """Start `notify api --workers N` and wait until it answers /healthz."""
        if self.api is not None and self.api.alive():
            return
        port = free_port()
        command = [*notify_command(), "api", "--port", str(port), "--workers", str(self.api_workers)]
        self.api = self._spawn("api", command)
        self.api_url = f"http://127.0.0.1:{port}"
        await self._wait_http(self.api, f"{self.api_url}/healthz")

    async def start_bare(self) -> None:
        """Start the bare Starlette endpoint (served as the API is: same workers, sockets, loop and HTTP protocol)."""
        if self.bare is not None and self.bare.alive():
            return
        port = free_port()
        api = self.settings().api
        http = uvicorn_http(api.coalesce_writes)
        command = [sys.executable, "-m", "notify.bench.bare", str(port), str(self.api_workers), http, str(api.nice)]
        self.bare = self._spawn("bare", command)
        self.bare_url = f"http://127.0.0.1:{port}"
        await self._wait_port(self.bare, port)

    async def stop_bare(self) -> None:
        """Stop the bare endpoint and drop its stream."""
        if self.bare is not None:
            await asyncio.to_thread(self.bare.stop)
            self.bare = None
        await self.redis.delete("bench:bare")

    def start_workers(self) -> None:
        """Start `notify worker` processes (they take a second or two to begin reading)."""
        while len(self.workers) < self.worker_procs:
            self.workers.append(self._spawn(f"worker-{len(self.workers) + 1}", [*notify_command(), "worker"]))

    async def stop_workers(self) -> None:
        """Stop the `notify worker` processes (their cron pollers would compete with a measured one)."""
        for worker in self.workers:
            await asyncio.to_thread(worker.stop)
        self.workers.clear()

    def start_notify(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Managed:
        """Start one `notify <args>` process (output in `<name>.log`); `env` adds to or overrides `env()`."""
        return self._spawn(name, [*notify_command(), *args], env)

    async def clear_inbox(self) -> None:
        """Empty every inbox stream (ingest runs leave tens of thousands of entries nobody will save).

        XTRIM keeps the streams and their consumer groups, which deleting them would take away from the workers.
        """
        for stream in ALL_STREAMS:
            await self.redis.xtrim(stream.inbox, maxlen=0, approximate=False)

    async def settle(self) -> None:
        """VACUUM ANALYZE the tables the benches write, so a bench does not start on the last one's dead rows.

        Without it the next bench meets stale planner statistics and an autovacuum in the middle of its run.
        """
        async with self.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("notifications", "jobs", "job_rows"):
                await autocommit.execute(text(f"VACUUM (ANALYZE) {table}"))

    async def inbox_length(self) -> int:
        """Return how many entries wait in the inbox streams."""
        total = 0
        for stream in ALL_STREAMS:
            total += int(await self.redis.xlen(stream.inbox))
        return total

    async def fake_stats(self) -> dict[str, Any]:
        """Return the fake AWS counters (one kept-alive connection: the benches poll this several times a second)."""
        if self._fake_http is None:
            self._fake_http = httpx.AsyncClient(base_url=self.fake_url)
        response = await self._fake_http.get("/_fake/stats")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    async def fake_sent_emails(self) -> int:
        """Return how many SendEmail calls the fake AWS has answered so far."""
        return int((await self.fake_stats())["sent_emails"])

    async def fake_queue(self, name: str) -> tuple[int, int]:
        """Return how many messages of one fake SQS queue are visible and how many in flight."""
        queue = (await self.fake_stats()).get("queues", {}).get(name, {})
        return int(queue.get("visible", 0)), int(queue.get("in_flight", 0))

    async def scalar(self, sql: str, **params: object) -> object:
        """Run one read-only query and return its first column of the first row."""
        async with self.engine.connect() as connection:
            return (await connection.execute(text(sql), params)).scalar()

    async def execute(self, sql: str, **params: object) -> int:
        """Run one writing statement in its own transaction and return the rows it affected."""
        async with self.engine.begin() as connection:
            result = await connection.execute(text(sql), params)
            return int(getattr(result, "rowcount", 0) or 0)

    async def row(self, sql: str, **params: object) -> tuple[object, ...]:
        """Run one read-only query and return its first row."""
        async with self.engine.connect() as connection:
            result = (await connection.execute(text(sql), params)).first()
            return tuple(result) if result is not None else ()

    def check_alive(self) -> None:
        """Raise with the log tail when a process the bench needs has died."""
        for managed in [self.api, self.fake, *self.workers]:
            if managed is not None and not managed.alive():
                raise RuntimeError(f"{managed.name} exited ({managed.popen.returncode}):\n{managed.log_tail()}")

    async def close(self) -> None:
        """Stop everything, newest first."""
        for managed in [*reversed(self.workers), self.bare, self.api, self.fake]:
            if managed is not None:
                await asyncio.to_thread(managed.stop)
        self.workers.clear()
        if self._fake_http is not None:
            await self._fake_http.aclose()
        if self._redis is not None:
            await self._redis.aclose()
        if self._engine is not None:
            await self._engine.dispose()
        if self._redis_server is not None:
            await asyncio.to_thread(self._redis_server.stop)
        if self._postgres is not None:
            await asyncio.to_thread(self._postgres.stop)

    # -- helpers -------------------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Upgrade the fresh database to `revision`."""
        migrations.upgrade(self.database_url, self.revision)

    def _spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Managed:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            # A session of its own, so stop() can signal uvicorn and its worker processes together.
            popen = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**self.env(), **(env or {})},
                cwd=self.workdir,
                start_new_session=True,
            )
        return Managed(name, popen, log)

    async def _wait_http(self, managed: Managed, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not managed.alive():
                    break
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{managed.name} did not start:\n{managed.log_tail()}")

    async def _wait_port(self, managed: Managed, port: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and managed.alive():
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            await asyncio.sleep(0.5)  # the second uvicorn worker may still be importing
            return
        raise RuntimeError(f"{managed.name} did not start:\n{managed.log_tail()}")


def notify_command() -> list[str]:
    """Return the argv prefix that runs the `notify` CLI with this interpreter."""
    script = Path(sys.executable).parent / "notify"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from notify.cli import main; main()"]


def receipt_queues() -> list[str]:
    """Return the SQS queue names the settings name (`*_queue` fields), so the workers' pollers find them."""
    settings = Settings().aws
    return [
        value
        for name, value in settings.model_dump().items()
        if name.endswith("_queue") and isinstance(value, str) and value
    ]
