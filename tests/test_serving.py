"""`notify api --workers 2` as an operator runs it: each worker process listens on a socket of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from notify.embedded import free_port
from notify.serving import reuse_port_supported
from notify.settings import ApiSettings, Settings
from tests.servers import Servers

CONNECTIONS = 64
NICE = 5  # NOTIFY_API__NICE: off by default, set here as an operator would

pytestmark = pytest.mark.skipif(not reuse_port_supported(), reason="SO_REUSEPORT balances connections on Linux only")


@pytest.fixture
def api_process(servers: Servers, settings: Settings, tmp_path: Path) -> Iterator[tuple[psutil.Process, int]]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": servers.database_url,
        "REDIS_URL": servers.redis_url,
        "NOTIFY_API__SECRET_KEY": settings.api.secret_key.get_secret_value(),
        "NOTIFY_API__NICE": str(NICE),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "notify.cli", "api", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,  # no stray .env
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_workers(psutil.Process(process.pid), port)) < 2 or not _healthy(port):
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "notify api did not start two workers"
            time.sleep(0.2)
        yield psutil.Process(process.pid), port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output


def _healthy(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            return _get(sock).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _get(sock: socket.socket) -> bytes:
    """Send one keep-alive request on `sock` and return the start of its answer (so a worker has accepted it)."""
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    return sock.recv(4096)


def _workers(supervisor: psutil.Process, port: int) -> dict[int, set[str]]:
    """Worker pid → the inodes of the sockets it listens on at `port`."""
    listening: dict[int, set[str]] = {}
    for child in supervisor.children(recursive=True):
        for fd in child.net_connections(kind="tcp"):
            if fd.status == psutil.CONN_LISTEN and fd.laddr.port == port:
                listening.setdefault(child.pid, set()).add(os.readlink(f"/proc/{child.pid}/fd/{fd.fd}"))
    return listening


def test_each_worker_listens_on_its_own_socket_and_takes_a_share_of_a_pool(
    api_process: tuple[psutil.Process, int],
) -> None:
    supervisor, port = api_process
    workers = _workers(supervisor, port)
    assert len(workers) == 2
    first, second = workers.values()
    assert len(first) == len(second) == 1
    assert first != second, "workers sharing one listening socket let one of them accept a whole pool"
    supervising = [c for c in supervisor.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
    assert supervising == [], "the supervisor's socket only reserves the port: it never takes connections"

    pool = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(CONNECTIONS)]
    try:
        assert all(_get(sock).startswith(b"HTTP/1.1 200") for sock in pool)
        held = {
            pid: sum(
                1
                for c in psutil.Process(pid).net_connections(kind="tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
            )
            for pid in workers
        }
    finally:
        for sock in pool:
            sock.close()
    assert sum(held.values()) == CONNECTIONS
    # Spread by a hash of each connection's addresses: fewer than 12 of 64 on one side has odds under 1e-6.
    assert min(held.values()) >= 12, held


def test_with_a_nice_value_the_api_and_its_workers_yield_the_cpu_to_the_machines_other_processes(
    api_process: tuple[psutil.Process, int],
) -> None:
    supervisor, port = api_process
    assert supervisor.nice() == NICE
    assert [psutil.Process(pid).nice() for pid in _workers(supervisor, port)] == [NICE, NICE]
    autogroup = Path(f"/proc/{supervisor.pid}/autogroup")
    if autogroup.exists():  # the fixture starts it in a session of its own, as a service manager does
        assert autogroup.read_text().split()[-1] == str(NICE)


def test_the_api_leaves_its_cpu_priority_alone_by_default() -> None:
    assert ApiSettings().nice == 0
