"""Hostile calculation code under simulation, through real ``btbuild`` processes.

Proving a change cosmetic runs the new code on fabricated worlds. Code that kills its process
there (``os._exit``, even with exit code 0), raises ``SystemExit`` / ``KeyboardInterrupt`` or
hangs with the alarm switched off must not end the build, change its exit code or leave stale
results: the sim judge runs in a child process (btbuild/sim/isolated.py), a dying simulation
is ``unproven`` and the cell re-runs. Each hostile edit below only fires on fabricated data
(cash above 1e7: the fabricated "huge" worlds; the real data's cash stays below 150,000), so
the real build of the new code succeeds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sim_helpers import VALUE

HUGE = '    if abs(ctx.user["portfolio"]["cash"]) > 1e7:\n'


def hostile(action: str) -> str:
    return VALUE.replace(
        "def value(ctx):\n",
        f"def value(ctx):\n    import os, signal, sys\n{HUGE}        {action}\n",
    )


def build(workspace: Path, day: str = "2024-01-03") -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "btbuild",
            "--workspace",
            str(workspace),
            "build",
            "//...",
            "--date",
            day,
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def cell(report: dict[str, Any], label: str = "//book:value", day: str = "2024-01-03") -> dict:
    return next(c for c in report["cells"] if c["label"] == label and c["date"] == day)


def _show(workspace: Path, user: str) -> Any:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "btbuild",
            "--workspace",
            str(workspace),
            "show",
            "//book:value",
            "--date",
            "2024-01-03",
            "--user",
            user,
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout


@pytest.mark.parametrize(
    ("action", "says"),
    [
        ("os._exit(0)", "ended its process"),  # exit code 0: would look like a passing build
        ("os.kill(os.getpid(), signal.SIGKILL)", "ended its process"),
        ("sys.exit(0)", ""),  # an exception of the code: an output, the SimHash differs
        ("raise KeyboardInterrupt", ""),
    ],
)
def test_hostile_code_under_simulation_never_ends_the_build(
    workspace: Path, action: str, says: str
) -> None:
    code, first, err = build(workspace)
    assert code == 0, err
    (workspace / "calculations" / "book" / "value.py").write_text(
        hostile(action).replace('invested + book["cash"]', 'book["cash"] + invested')
    )
    code, second, err = build(workspace)
    assert code == 0, err  # the build finished: its own exit code, its own report
    value = cell(second)
    assert (value["status"], value["reason"]) == ("ran", "code_changed"), value
    assert says in (value.get("detail") or ""), value
    assert cell(second, "//book:total")["status"] in ("ran", "skipped")
    # a third build has nothing to do: the results are the new code's, nothing is stale
    code, third, err = build(workspace)
    assert code == 0, err
    assert (cell(third)["status"], cell(third)["reason"]) == ("skipped", "up_to_date"), cell(third)


def test_a_simulation_that_switches_the_alarm_off_and_hangs_is_unproven(
    workspace: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from btbuild.sim import isolated

    ws = ["--workspace", str(workspace)]
    code, report = run_cli(*ws, "build", "//...", "--date", "2024-01-03", "--format", "json")
    assert code == 0, report
    (workspace / "calculations" / "book" / "value.py").write_text(
        hostile(
            "signal.setitimer(signal.ITIMER_REAL, 0)\n"
            "        signal.setitimer(signal.ITIMER_PROF, 0)\n"
            "        while True: pass"
        )
    )
    monkeypatch.setattr(isolated, "ANSWER_SECONDS", 8.0)  # it hangs: any limit gives up
    started = time.monotonic()
    code, report = run_cli(*ws, "build", "//...", "--date", "2024-01-03", "--format", "json")
    assert code == 0, report
    value = cell(report)
    assert (value["status"], value["reason"]) == ("ran", "code_changed"), value
    assert "did not finish within 8 s" in value["detail"], value
    assert time.monotonic() - started < 120  # the verdict and the after-run SimHash gave up


def test_verify_never_answers_with_the_calculations_exit_code(workspace: Path) -> None:
    from sim_helpers import git

    git(workspace, "init", "-q")
    git(workspace, "add", ".")
    git(workspace, "commit", "-q", "-m", "base")
    (workspace / "calculations" / "book" / "value.py").write_text(hostile("os._exit(0)"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "btbuild",
            "--workspace",
            str(workspace),
            "verify",
            "--base",
            "HEAD",
            "--search-seconds",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "os._exit" in errors[0], done.stderr
    assert git(workspace, "worktree", "list").count("\n") == 1  # the base's tree is gone
