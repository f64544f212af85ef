"""Serve the app over real HTTP on a thread, for clients that speak HTTP themselves (notifications-python-client)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from notify.app import local_server
from notify.embedded import free_port
from notify.settings import Settings


@contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """Run the API for `settings` on a free port until the block ends; yield its base URL."""
    port = free_port()
    server = local_server(settings, port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
