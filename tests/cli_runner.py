"""Run `notify` CLI commands in tests the way a user's shell would: in a thread of their own.

The commands call `asyncio.run`, which in the main thread would replace the test session's event loop.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from typer.testing import CliRunner, Result

from notify.cli import app


def invoke(*args: str) -> Result:
    """Run `notify <args>` and return its result (exit code, output)."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(CliRunner().invoke, app, list(args)).result()
