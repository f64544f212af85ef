"""`notify bench` runs end to end on tiny sizes and prints its table (speed is never asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from notify.bench.load import LoadSpec, parse_wrk_output, percentile, wrk_script
from notify.bench.runs import Figure

NOTIFY = Path(sys.executable).parent / "notify"


def _bench(*args: str, timeout_s: float) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "AWS_ENDPOINT_URL")}
    env["COLUMNS"] = "220"  # rich wraps at 80 columns without a terminal
    result = subprocess.run(
        [str(NOTIFY), "bench", *args, "--api-workers", "1", "--worker-procs", "1"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _row_number(output: str, figure: str) -> float:
    match = re.search(rf"│ {re.escape(figure)}\s*│\s*([\d,.]+)", output)
    assert match is not None, f"no {figure!r} row in:\n{output}"
    return float(match.group(1).replace(",", ""))


@pytest.mark.timeout(240)
def test_ingest_and_e2e_print_their_figures() -> None:
    ingest = _bench("ingest", "--duration", "1", timeout_s=110)
    assert _row_number(ingest, "accepted/s") > 0
    assert "bare Starlette+XADD" in ingest
    assert re.search(r"load generator: (wrk|built-in)", ingest)
    spread = r"(\d+(/\d+)*|not sampled)"
    assert re.search(rf"connections per serving process: notify {spread}, bare {spread}", " ".join(ingest.split()))

    e2e = _bench("e2e", "--size", "200", timeout_s=110)
    assert _row_number(e2e, "notifications/s") > 0
    assert "aiobotocore loop" in e2e
    assert re.search(r"before and after the run: \d+/s and \d+/s, mean \d+/s", " ".join(e2e.split()))
    sent = re.search(r"e2e: (\d+) of (\d+) rows sent", e2e)
    assert sent is not None
    assert sent.group(1) == sent.group(2)
    assert int(sent.group(1)) >= 200
    assert "peak RSS" in e2e
    # Rich wraps long lines: the CPU split is read with whitespace folded.
    split = re.search(r"PostgreSQL (\d+\.\d+) ms, Redis (\d+\.\d+) ms, fake AWS (\d+\.\d+) ms", " ".join(e2e.split()))
    assert split is not None, "the e2e note gives the servers' CPU per notification"
    assert float(split.group(1)) > 0
    assert re.search(r"connections per API process: (\d+(/\d+)*|not sampled)", " ".join(e2e.split()))


def test_wrk_script_posts_with_the_api_key_and_stops_at_the_quota() -> None:
    spec = LoadSpec("http://x/v2/notifications/email", b'{"a": 1}', "k-123", 8, count=50, rate_per_s=400)
    script = wrk_script(spec)
    assert 'wrk.headers["Authorization"] = "ApiKey-v1 k-123"' in script
    assert 'wrk.body = [==[{"a": 1}]==]' in script
    assert "local quota = 50" in script
    assert "local interval = 2.500" in script  # 400/s: one request every 2.5 ms, whichever connection is free


def test_wrk_summary_is_parsed() -> None:
    line = (
        'Running 1s test\nBENCH_JSON {"requests":1000,"duration_us":2000000,"status":10,"connect":0,"read":1,'
        '"write":0,"timeout":2,"p50_us":1500,"p99_us":40000}\n'
    )
    result = parse_wrk_output(line)
    assert (result.completed, result.ok, result.errors) == (1000, 990, 13)
    assert result.rate == pytest.approx(495.0)
    assert (result.p50_ms, result.p99_ms) == (1.5, 40.0)
    with pytest.raises(RuntimeError, match="no summary"):
        parse_wrk_output("wrk: connection refused")


def test_percentile_and_ratio() -> None:
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert Figure("e2e", "x", 900.0, reference=300.0).ratio == pytest.approx(3.0)
    assert Figure("e2e", "x", None, reference=300.0).ratio is None


@pytest.mark.timeout(200)
def test_receipts_applies_every_event_it_enqueued() -> None:
    output = _bench("receipts", "--size", "300", timeout_s=180)
    assert _row_number(output, "events applied/s") > 0
    delivered = re.search(r"receipts cross-check: (\d+)\s+of\s+(\d+)\s+rows\s+delivered", output)
    assert delivered is not None, output
    assert delivered.groups() == ("300", "300")
    assert re.search(r"receipts: 300\s+of\s+300\s+events\s+applied", output)


@pytest.mark.timeout(200)
def test_bulk_prints_its_figure() -> None:
    output = _bench("bulk", "--size", "200", timeout_s=180)
    assert _row_number(output, "rows saved/s") > 0
    assert "bulk: 200/200 rows saved" in output
    assert "bulk, sending paused: 200/200 rows saved" in output


@pytest.mark.timeout(200)
def test_latency_prints_its_figures() -> None:
    output = _bench("latency", "--duration", "1", "--rate", "100", timeout_s=180)
    assert _row_number(output, "offered → accepted") > 0
    assert _row_number(output, "accepted → sent p99") > 0
    sent = re.search(r"latency: .*?; (\d+)/(\d+) sent", output, re.DOTALL)
    assert sent is not None, output
    assert sent.group(1) == sent.group(2)
    assert int(sent.group(1)) > 0
    stages = re.search(
        r"accepted\s+→\s+claimed\s+(\d+)\s+/\s+(\d+)\s+ms,\s+claimed\s+→\s+SES\s+answered\s+(\d+)", output
    )
    assert stages is not None, output
    assert re.search(r"latency\s+CPU\s+per\s+notification:\s+API\s+[\d.]+\s+ms,\s+workers", output), output
    assert re.search(r"API CPU priority \(NOTIFY_API__NICE\): nice \d+", " ".join(output.split())), output
