"""Run uvicorn's worker processes each on a listening socket of its own, so the kernel spreads connections evenly.

uvicorn's worker processes share one listening socket: whichever process the kernel wakes first accepts every
connection that is waiting, so a burst of new connections (a client's pool opening) often lands mostly on one
process, which then queues for one core while the other processes idle (64 connections split 53/11 and 55/9 in
`notify bench`, BENCHMARKS.md). With one socket per process in a SO_REUSEPORT group, Linux assigns each new
connection to a process by a hash of its addresses, which splits a pool about evenly. Everything else is uvicorn's
own: its configuration, its supervisor (signals, health checks, restarting a dead worker) and its server.
"""

from __future__ import annotations

import logging
import socket
import sys
from contextlib import suppress
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from notify.ops import priority

log = logging.getLogger("uvicorn.error")


def reuse_port_supported() -> bool:
    """Return whether SO_REUSEPORT balances connections here (Linux; other systems only share the port)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class _PerProcessSocket(socket.socket):
    """The supervisor's socket: bound with SO_REUSEPORT (reserving the port), never listened on.

    Sent to a worker process, it arrives as a new socket bound to the same address, which that process listens
    on; the supervisor's own is not in the group that receives connections, since it never listens.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_bound_socket, (self.family, self.getsockname()))


def _bound_socket(family: int, address: Any, kind: type[socket.socket] = socket.socket) -> socket.socket:
    sock = kind(family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class _Config(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        """Bind the supervisor's SO_REUSEPORT socket (uvicorn's logs the address; this one does as uvicorn does)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            sock = _bound_socket(family, (self.host, self.port), _PerProcessSocket)
        except OSError as exc:
            log.error(exc)
            sys.exit(STARTUP_FAILURE)
        shown = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        port = sock.getsockname()[1]
        log.info("Uvicorn running on http://%s:%d, a socket per worker (Press CTRL+C to quit)", shown, port)
        return sock


def run(app: str, *, workers: int, nice: int = 0, **options: Any) -> None:
    """Serve `app` (an import string) as `uvicorn.run` does; several workers on Linux get a socket each.

    With `nice`, the server and its workers first yield the CPU to the machine's other processes
    (`notify.ops.priority`).
    """
    if nice:
        now = priority.yield_cpu(nice)
        log.info("CPU priority lowered: nice %d, session's autogroup nice %s", now.nice, now.autogroup_nice)
    if workers < 2 or not reuse_port_supported():
        uvicorn.run(app, workers=workers, **options)
        return
    config = _Config(app, workers=workers, **options)
    with suppress(KeyboardInterrupt):  # as uvicorn.run: the supervisor has already stopped the workers
        Multiprocess(config, sockets=[config.bind_socket()]).run()
