"""Serve the app over real HTTP on a thread, for clients that speak HTTP themselves (notifications-python-client)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from notify.app import create_app
from notify.embedded import free_port
from notify.http_protocol import uvicorn_http
from notify.settings import Settings


@contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """Run the API for `settings` on a free port until the block ends; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        http=uvicorn_http(settings.api.coalesce_writes),
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
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
