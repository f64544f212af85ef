"""`notify bench …`: start everything as subprocesses, measure, print figures beside same-run references."""

from __future__ import annotations

import asyncio
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import psutil
import typer
from rich.console import Console
from rich.table import Table

from notify.bench.load import wrk_path

if TYPE_CHECKING:
    from notify.bench import runs

bench_app = typer.Typer(
    help="Benchmarks of DESIGN §10 (they print figures; they never fail on speed).", no_args_is_help=True
)
console = Console()

Duration = Annotated[float, typer.Option("--duration", help="Seconds of load for ingest and latency.")]
Size = Annotated[
    int | None,
    typer.Option("--size", help="Emails for e2e (30,000), rows for bulk (50,000), events for receipts (20,000)."),
]
Connections = Annotated[int, typer.Option(help="Concurrent connections of the load generator.")]
ApiWorkers = Annotated[int, typer.Option(help="uvicorn workers of `notify api` and of the bare endpoint.")]
WorkerProcs = Annotated[int, typer.Option(help="`notify worker` processes.")]
Generator = Annotated[str, typer.Option(help="auto (wrk when installed), wrk or builtin.")]
SesLatency = Annotated[float, typer.Option(help="Fake AWS answer delay in ms (SES, SNS and SQS alike).")]
Rate = Annotated[float, typer.Option(help="Offered notifications/s for the latency test.")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Also write the figures and notes to this file.")]
Revision = Annotated[str, typer.Option(help="Alembic revision to migrate a fresh database to.")]
KeepDir = Annotated[bool, typer.Option(help="Keep the temporary directory (process logs) after the run.")]


def _execute(
    names: list[str],
    *,
    duration: float,
    size: int | None,
    connections: int,
    api_workers: int,
    worker_procs: int,
    generator: str,
    ses_latency_ms: float,
    rate: float,
    json_out: Path | None,
    keep_dir: bool,
    revision: str,
) -> None:
    import uvloop

    from notify.bench import runs

    if generator not in ("auto", "wrk", "builtin"):
        raise typer.BadParameter("--generator must be auto, wrk or builtin")
    use_wrk = generator == "wrk" or (generator == "auto" and wrk_path() is not None)
    if generator == "wrk" and wrk_path() is None:
        raise typer.BadParameter("wrk is not installed (apt-get install -y wrk)")
    options = runs.Options(connections=connections, duration_s=duration, size=size, rate_per_s=rate, use_wrk=use_wrk)
    workdir = Path(tempfile.mkdtemp(prefix="notify-bench-"))
    console.print(f"[dim]notify bench {' '.join(names)}: {_machine()}; work dir {workdir}[/dim]")
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            report = runner.run(
                runs.run(
                    names,
                    options,
                    workdir=workdir,
                    api_workers=api_workers,
                    worker_procs=worker_procs,
                    ses_latency_ms=ses_latency_ms,
                    revision=revision,
                )
            )
    except RuntimeError as exc:
        console.print(f"[red]bench failed:[/red] {exc}")
        console.print(f"[dim]process logs kept in {workdir}[/dim]")
        raise typer.Exit(code=1) from exc
    if not keep_dir:
        shutil.rmtree(workdir, ignore_errors=True)
    print_report(report)
    if json_out is not None:
        json_out.write_bytes(
            orjson.dumps(
                {
                    "machine": _machine(),
                    "figures": [{**_figure_dict(f)} for f in report.figures],
                    "notes": report.notes,
                },
                option=orjson.OPT_INDENT_2,
            )
        )


def _figure_dict(figure: runs.Figure) -> dict[str, object]:
    return {
        "bench": figure.bench,
        "figure": figure.figure,
        "value": figure.value,
        "unit": figure.unit,
        "reference": figure.reference,
        "reference_label": figure.reference_label,
        "ratio": figure.ratio,
        "target": figure.target,
        "ratio_target": figure.ratio_target,
    }


def _machine() -> str:
    return (
        f"{psutil.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB, Python {platform.python_version()}, "
        f"load average {' '.join(f'{x:.1f}' for x in psutil.getloadavg())}, "
        f"CPU gauge {cpu_gauge_s():.2f} s"
    )


def cpu_gauge_s(iterations: int = 5_000_000) -> float:
    """Return the CPU seconds a fixed pure-Python loop takes on this core, now.

    On a shared machine one core's speed drifts by 2x over hours; figures without a same-run reference
    (bulk, receipts) can only be compared between runs next to this gauge.
    """
    started = time.process_time()
    total = 0
    for i in range(iterations):
        total += i
    return time.process_time() - started


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    text = f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    return f"{text} {unit}".strip() if unit != "/s" else f"{text}/s"


def print_report(report: runs.Report) -> None:
    """Print the figures as a table, then the notes."""
    table = Table("bench", "figure", "notify", "same-run reference", "ratio", "target", title="notify bench")
    for figure in report.figures:
        reference = _number(figure.reference, figure.unit)
        if figure.reference is not None and figure.reference_label:
            reference += f" ({figure.reference_label})"
        ratio = "—" if figure.ratio is None else f"{figure.ratio:.2f}"
        if figure.ratio is not None and figure.ratio_target is not None:
            ratio += f" (goal ≥ {figure.ratio_target:g})"
        table.add_row(figure.bench, figure.figure, _number(figure.value, figure.unit), reference, ratio, figure.target)
    console.print(table)
    for note in report.notes:
        console.print(f"• {note}")


def _command(names: list[str]) -> Callable[..., None]:
    def command(
        duration: Duration = 10.0,
        size: Size = None,
        connections: Connections = 64,
        api_workers: ApiWorkers = 2,
        worker_procs: WorkerProcs = 2,
        generator: Generator = "auto",
        ses_latency_ms: SesLatency = 20.0,
        rate: Rate = 1500.0,
        json_out: JsonOut = None,
        keep_dir: KeepDir = False,
        revision: Revision = "head",
    ) -> None:
        _execute(
            names,
            duration=duration,
            size=size,
            connections=connections,
            api_workers=api_workers,
            worker_procs=worker_procs,
            generator=generator,
            ses_latency_ms=ses_latency_ms,
            rate=rate,
            json_out=json_out,
            keep_dir=keep_dir,
            revision=revision,
        )

    return command


bench_app.command("ingest", help="POST /v2/notifications/email at full speed beside a bare Starlette + XADD.")(
    _command(["ingest"])
)
bench_app.command("e2e", help="Post --size emails while the workers send them to a fake SES (20 ms).")(
    _command(["e2e"])
)
bench_app.command("latency", help="Steady --rate for --duration: accepted → sent p50/p99.")(_command(["latency"]))
bench_app.command("bulk", help="One --size-row bulk job from POST to every row saved.")(_command(["bulk"]))
bench_app.command(
    "receipts", help="--size SES Delivery events on the fake SQS, applied by one `notify receipts poll`: events/s."
)(_command(["receipts"]))
bench_app.command("all", help="ingest, e2e, latency, bulk and receipts on one stack.")(
    _command(["ingest", "e2e", "latency", "bulk", "receipts"])
)
