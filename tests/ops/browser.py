"""Drive the system Chromium headless, with every host but 127.0.0.1 unresolvable (no internet for the page)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from notify.embedded import free_port

OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def chromium_or_skip() -> str:
    """Return the Chromium executable, or skip the test when none is installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("chromium is not installed (apt-get install chromium)")


async def dump_dom(url: str, budget_ms: int = 15_000) -> str:
    """Load `url`, let its scripts run for `budget_ms` of virtual time, and return the rendered DOM."""
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            chromium_or_skip(),
            *OFFLINE_FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    return stdout.decode()


class Page:
    """A Chrome DevTools Protocol session on one page."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a CDP method and return its result (events received meanwhile are dropped)."""
        message_id = next(self.ids)
        await self.socket.send(orjson.dumps({"id": message_id, "method": method, "params": params}).decode())
        while True:
            message = orjson.loads(await self.socket.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (awaiting a promise) and return its JSON value."""
        result = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 30) -> Any:
        """Poll `expression` until it is truthy; return its value."""
        async with asyncio.timeout(timeout_s):
            while not (value := await self.evaluate(expression)):  # noqa: ASYNC110 - polls the page, no event to await
                await asyncio.sleep(0.1)
        return value


@asynccontextmanager
async def open_page(url: str) -> AsyncIterator[Page]:
    """Start Chromium with remote debugging, open `url` and yield a CDP session on it."""
    port = free_port()
    # Chromium's helper processes can outlive the browser for a moment and still write into the profile: they are
    # stopped as one process group, and what they leave behind is not worth failing a test over.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        process = await asyncio.create_subprocess_exec(
            chromium_or_skip(),
            *OFFLINE_FLAGS,
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            targets = await _page_targets(port)
            async with connect(targets[0]["webSocketDebuggerUrl"], max_size=None) as socket:
                page = Page(socket)
                await page.send("Page.navigate", url=url)
                yield page
        finally:
            await _stop_group(process)


async def _stop_group(process: asyncio.subprocess.Process) -> None:
    """Stop Chromium and every helper it started (SIGTERM, then SIGKILL after 10 s)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout=10)
    except TimeoutError:
        process.kill()
        await process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # helpers that outlived the browser


async def _page_targets(port: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as http, asyncio.timeout(60):
        while True:
            try:
                targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
                pages = [target for target in targets if target.get("type") == "page"]
                if pages:
                    return pages
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)


SET_VALUE = """
window.__setValue = (el, value) => {
  const proto = el.tagName === 'TEXTAREA' ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, value);  // React tracks the native setter
  el.dispatchEvent(new Event('input', {bubbles: true}));
  el.dispatchEvent(new Event('change', {bubbles: true}));
  return true;
};
"""


async def authorize_api_key(page: Page, scheme: str, value: str) -> None:
    """Use Swagger UI's Authorize dialog to set an apiKey scheme, as a user would."""
    await page.evaluate(SET_VALUE)
    await page.evaluate("document.querySelector('button.authorize').click() || true")
    container = f"[...document.querySelectorAll('.auth-container')].find(c => c.textContent.includes('{scheme}'))"
    await page.wait_for(f"!!({container})")
    await page.evaluate(f"window.__setValue(({container}).querySelector('input'), {orjson.dumps(value).decode()})")
    await page.evaluate(f"({container}).querySelector('button.authorize').click() || true")
    await page.wait_for(f"({container}).textContent.includes('Logout')")
    await page.evaluate("document.querySelector('.btn-done, button.close-modal').click() || true")


async def try_it_out(page: Page, operation_id: str, body: str) -> tuple[str, str]:
    """Expand an operation, press "Try it out", type `body`, press "Execute"; return the status and body shown."""
    op = f"document.getElementById('{operation_id}')"
    await page.wait_for(f"!!{op}")
    await page.evaluate(f"{op}.querySelector('.opblock-summary-control').click() || true")
    await page.wait_for(f"!!{op}.querySelector('.try-out__btn')")
    await page.evaluate(f"{op}.querySelector('.try-out__btn').click() || true")
    await page.wait_for(f"!!{op}.querySelector('textarea.body-param__text')")
    await page.evaluate(
        f"window.__setValue({op}.querySelector('textarea.body-param__text'), {orjson.dumps(body).decode()})"
    )
    await page.evaluate(f"{op}.querySelector('button.execute').click() || true")
    status = await page.wait_for(
        f"({op}.querySelector('.live-responses-table tr.response .response-col_status') || {{}}).textContent",
        timeout_s=30,
    )
    shown = await page.evaluate(
        f"{op}.querySelector('.live-responses-table tr.response .response-col_description').textContent"
    )
    return str(status).strip(), str(shown)
