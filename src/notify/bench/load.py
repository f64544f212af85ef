"""Load generators: wrk with a Lua script when it is installed, else a built-in aiohttp one."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson

_WRK_MARK = "BENCH_JSON "
_WRK_QUOTA = "BENCH_QUOTA_REACHED"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load run achieved, as the generator saw it."""

    generator: str
    completed: int
    ok: int
    errors: int
    duration_s: float
    p50_ms: float | None
    p99_ms: float | None

    @property
    def rate(self) -> float:
        """Return successful responses per second."""
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One POST repeated: where, with which headers and body, how hard and for how long."""

    url: str
    body: bytes
    api_key: str | None
    connections: int
    duration_s: float | None = None
    count: int | None = None
    rate_per_s: float | None = None

    def headers(self) -> dict[str, str]:
        """Return the request headers."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"ApiKey-v1 {self.api_key}"
        return headers


def wrk_path() -> str | None:
    """Return the wrk binary when installed."""
    return shutil.which("wrk")


def generator_name(use_wrk: bool) -> str:
    """Name the generator a run will use."""
    return "wrk (Lua POST script)" if use_wrk else "built-in (asyncio + aiohttp, uvloop)"


async def run_load(spec: LoadSpec, *, use_wrk: bool, workdir: Path) -> LoadResult:
    """Run one load and return what it achieved."""
    if use_wrk:
        return await _run_wrk(spec, workdir)
    return await _run_builtin(spec)


# -- wrk -------------------------------------------------------------------------------------------


def wrk_script(spec: LoadSpec) -> str:
    """Build the Lua script: fixed POST, optional quota (announced on stdout) and pacing, JSON summary."""
    body = spec.body.decode()
    if "]==]" in body:
        raise ValueError("body cannot be embedded in the Lua script")
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{body}]==]"]
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in spec.headers().items()]
    if spec.count is not None:
        # One wrk thread: stop it once the quota has answered and tell the bench on stdout, because wrk's
        # main thread otherwise sleeps for the whole -d duration (SIGINT ends that sleep and prints the summary).
        lines += [
            f"local quota = {spec.count}",
            "local seen = 0",
            "function response(status, headers, body)",
            "  seen = seen + 1",
            "  if seen == quota then",
            f'    io.write("{_WRK_QUOTA}\\n")',
            "    io.flush()",
            "    wrk.thread:stop()",
            "  end",
            "end",
        ]
    if spec.rate_per_s:
        # One schedule for the thread: each request takes the next slot, 1/rate after the previous one, and waits
        # for it (LuaJIT's FFI reads the monotonic clock). A fixed per-connection delay would add each response's
        # latency to the gap and offer less than the rate asked for.
        lines += [
            'local ffi = require("ffi")',
            "ffi.cdef[[",
            "typedef struct { long tv_sec; long tv_nsec; } bench_timespec;",
            "int clock_gettime(int clk_id, bench_timespec *tp);",
            "]]",
            'local now_ts = ffi.new("bench_timespec")',
            "local function now_ms()",
            "  ffi.C.clock_gettime(1, now_ts)",  # CLOCK_MONOTONIC
            "  return tonumber(now_ts.tv_sec) * 1000 + tonumber(now_ts.tv_nsec) / 1e6",
            "end",
            f"local interval = {1000.0 / spec.rate_per_s:.3f}",
            "local next_at = nil",
            "function delay()",
            "  local now = now_ms()",
            "  next_at = (next_at or now) + interval",
            "  return math.max(0, next_at - now)",
            "end",
        ]
    lines += [
        "function done(summary, latency, requests)",
        "  local e = summary.errors",
        f'  io.write(string.format("{_WRK_MARK}'
        '{\\"requests\\":%d,\\"duration_us\\":%d,\\"status\\":%d,\\"connect\\":%d,\\"read\\":%d,'
        '\\"write\\":%d,\\"timeout\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d}\\n",',
        "    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,",
        "    latency:percentile(50), latency:percentile(99)))",
        "end",
    ]
    return "\n".join(lines) + "\n"


async def _run_wrk(spec: LoadSpec, workdir: Path) -> LoadResult:
    binary = wrk_path()
    if binary is None:
        raise RuntimeError("wrk is not installed")
    script = workdir / f"wrk-{time.monotonic_ns()}.lua"
    script.write_text(wrk_script(spec))
    duration = spec.duration_s if spec.duration_s is not None else 600.0
    command = [binary, "-t1", f"-c{spec.connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s"]
    command += ["-s", str(script), spec.url]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    lines: list[str] = []
    async for raw in process.stdout:
        line = raw.decode(errors="replace")
        if line.startswith(_WRK_QUOTA):
            process.send_signal(signal.SIGINT)
        lines.append(line)
    stderr = await process.stderr.read() if process.stderr is not None else b""
    await process.wait()
    return parse_wrk_output("".join(lines), stderr.decode(errors="replace"))


def parse_wrk_output(stdout: str, stderr: str = "") -> LoadResult:
    """Read the JSON line our `done()` printed."""
    match = re.search(re.escape(_WRK_MARK) + r"(\{.*\})", stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{stdout}\n{stderr}")
    data = orjson.loads(match.group(1))
    socket_errors = data["connect"] + data["read"] + data["write"] + data["timeout"]
    completed = int(data["requests"])
    return LoadResult(
        generator="wrk",
        completed=completed,
        ok=completed - int(data["status"]),
        errors=int(data["status"]) + socket_errors,
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


# -- built-in --------------------------------------------------------------------------------------


async def _run_builtin(spec: LoadSpec) -> LoadResult:
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0, "left": spec.count if spec.count is not None else -1}
    headers = spec.headers()
    interval = spec.connections / spec.rate_per_s if spec.rate_per_s else 0.0
    start = time.perf_counter()
    deadline = start + spec.duration_s if spec.duration_s is not None else float("inf")

    async def connection(session: aiohttp.ClientSession, offset: float) -> None:
        next_at = start + offset
        while True:
            if spec.count is not None:
                if counts["left"] <= 0:
                    return
                counts["left"] -= 1
            if time.perf_counter() >= deadline:
                return
            if interval:
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            sent = time.perf_counter()
            try:
                async with session.post(spec.url, data=spec.body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                counts["errors"] += 1
                continue
            latencies.append(time.perf_counter() - sent)
            counts["ok" if 200 <= status < 300 else "errors"] += 1

    connector = aiohttp.TCPConnector(limit=spec.connections)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        offsets = [i * interval / spec.connections for i in range(spec.connections)]
        await asyncio.gather(*(connection(session, offset) for offset in offsets))
    duration = time.perf_counter() - start
    latencies.sort()
    return LoadResult(
        generator="built-in",
        completed=len(latencies),
        ok=counts["ok"],
        errors=counts["errors"],
        duration_s=duration,
        p50_ms=percentile(latencies, 0.50) * 1000 if latencies else None,
        p99_ms=percentile(latencies, 0.99) * 1000 if latencies else None,
    )


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of an ascending list."""
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]
