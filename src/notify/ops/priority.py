"""Let the API yield the CPU to the workers on a machine they share (`NOTIFY_API__NICE`, off by default).

When the API, the workers, PostgreSQL and Redis share a machine's cores and the machine is busy, every stage
between accepted and sent waits for a core. Giving the API the lower priority makes the workers run first: an
accepted notification is sent before more are taken in, and the API's answers slow down instead (backpressure on
the clients). At 1,500 notifications/s on two busy cores, nice 5 cut accepted → sent p99 from a mean of 467 to
265 ms over eleven pairs; it also cost the API a quarter more p99, 14 % of its rate with no worker running, and,
when the cores were shortest, part of the offered rate (BENCHMARKS.md, twelfth session). Intake or delivery: which
should wait is the operator's choice, so it is off unless set.

Linux weighs the CPU between sessions (autogroups) before it weighs the processes within one, so a nice value on
its own only ranks the API against the processes of its session: a `notify worker` started from the same shell.
A service manager or `notify bench` starts the API in a session of its own, and there the session's autogroup
nice is what ranks it against the workers; `notify api` sets it only when it leads its session, so it never slows
down other processes that share it. Under systemd or in containers the CPU weight of the unit or container
decides instead (`CPUWeight=`, compose's `cpu_shares`).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

AUTOGROUP = Path("/proc/self/autogroup")
_AUTOGROUP_NICE = re.compile(rb"nice\s+(-?\d+)")


@dataclass(frozen=True, slots=True)
class Priority:
    """This process's nice value, and its autogroup's when that is known (None: not Linux, or no autogroups)."""

    nice: int
    autogroup_nice: int | None


def current(autogroup: Path = AUTOGROUP) -> Priority:
    """Return the nice values in force for this process."""
    return Priority(os.getpriority(os.PRIO_PROCESS, 0), _autogroup_nice(autogroup))


def of_process(pid: int) -> Priority:
    """Return the nice values in force for another process; raise ProcessLookupError if it is gone."""
    return Priority(os.getpriority(os.PRIO_PROCESS, pid), _autogroup_nice(Path(f"/proc/{pid}/autogroup")))


def yield_cpu(nice: int, autogroup: Path = AUTOGROUP) -> Priority:
    """Lower this process's priority to `nice` (never raise it), and its autogroup's when it leads its session.

    Processes it starts afterwards (uvicorn's workers) inherit the nice value and share the autogroup. Raising a
    priority takes privileges, lowering one does not, so this works for any user; an autogroup that cannot be
    changed (no such file, a kernel without autogroups) is left as it is.
    """
    if nice <= 0:
        return current(autogroup)
    if os.getpriority(os.PRIO_PROCESS, 0) < nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    if os.getsid(0) == os.getpid():
        group_nice = _autogroup_nice(autogroup)
        if group_nice is not None and group_nice < nice:
            with contextlib.suppress(OSError):  # not ours to change after all: the nice value still holds
                autogroup.write_text(str(nice))
    return current(autogroup)


def _autogroup_nice(autogroup: Path) -> int | None:
    """Read the nice value of an autogroup file (`/autogroup-N nice K`); None where there is no such file."""
    try:
        match = _AUTOGROUP_NICE.search(autogroup.read_bytes())
    except OSError:
        return None
    return int(match.group(1)) if match else None
