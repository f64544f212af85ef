"""With `NOTIFY_API__NICE`, `notify api` yields the CPU to the workers: its nice value, and its session's autogroup
when it leads one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from notify.ops import priority

AUTOGROUPS = priority.current().autogroup_nice is not None
needs_autogroups = pytest.mark.skipif(not AUTOGROUPS, reason="this kernel has no autogroups (/proc/self/autogroup)")


def _run(script: str, *, own_session: bool) -> dict[str, int | None]:
    """Run `script` (after `from notify.ops import priority`) in a child; return the JSON it prints."""
    code = "import json, os\nfrom notify.ops import priority\n" + script
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, start_new_session=own_session
    )
    result: dict[str, int | None] = json.loads(done.stdout)
    return result


REPORT = "now = priority.yield_cpu({nice})\nprint(json.dumps({{'nice': now.nice, 'group': now.autogroup_nice}}))"


@needs_autogroups
def test_a_session_leader_lowers_its_nice_value_and_its_autogroups() -> None:
    assert _run(REPORT.format(nice=5), own_session=True) == {"nice": 5, "group": 5}


def test_a_process_in_someone_elses_session_leaves_the_shared_autogroup_alone() -> None:
    ours = priority.current()
    child = _run(REPORT.format(nice=5), own_session=False)
    assert child == {"nice": max(5, ours.nice), "group": ours.autogroup_nice}
    assert priority.current() == ours


@needs_autogroups
def test_a_lower_priority_already_set_is_never_raised() -> None:
    script = "os.setpriority(os.PRIO_PROCESS, 0, 10)\nopen('/proc/self/autogroup', 'w').write('12')\n"
    assert _run(script + REPORT.format(nice=5), own_session=True) == {"nice": 10, "group": 12}


def test_nice_zero_changes_nothing() -> None:
    ours = priority.current()
    child = _run(REPORT.format(nice=0), own_session=True)
    assert child["nice"] == ours.nice
    if AUTOGROUPS:
        assert child["group"] == 0  # a new session starts a new autogroup at nice 0


def test_without_autogroups_only_the_nice_value_moves(tmp_path: Path) -> None:
    missing = tmp_path / "autogroup"
    script = f"now = priority.yield_cpu(7, autogroup=__import__('pathlib').Path({str(missing)!r}))\n"
    script += "print(json.dumps({'nice': now.nice, 'group': now.autogroup_nice}))"
    assert _run(script, own_session=True) == {"nice": 7, "group": None}
    assert not missing.exists()
