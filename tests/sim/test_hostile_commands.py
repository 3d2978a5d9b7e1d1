"""``btbuild sim``, ``status``, ``explain`` and ``report`` with hostile calculation code.

They run calculation code to simulate or judge a change: that code runs in the same child
process as the build's judge (btbuild/sim/isolated.py), so a calculation that ends its process
(``os._exit``), or switches the alarm off and loops, is one line of the command's output
(``error: ...`` from ``sim``, an ``unproven`` verdict from the others), never the end or the
hang of the command. The hostile code only fires on fabricated data (see test_hostile_sim.py),
so the real build of the new code succeeds. Commands that could kill the test run in real
processes; the hang runs in-process with a short answer time-out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_hostile_sim import build, hostile

EXIT = hostile("os._exit(0)").replace('invested + book["cash"]', 'book["cash"] + invested')
HANG = hostile(
    "signal.setitimer(signal.ITIMER_REAL, 0)\n"
    "        signal.setitimer(signal.ITIMER_PROF, 0)\n"
    "        while True: pass"
).replace('invested + book["cash"]', 'book["cash"] + invested')


def btbuild(workspace: Path, *args: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "btbuild", "--workspace", str(workspace), *args],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def built(workspace: Path) -> Path:
    """A workspace built once with the good code, then edited to code that calls
    ``os._exit(0)`` on fabricated data."""
    code, _, err = build(workspace)
    assert code == 0, err
    (workspace / "calculations" / "book" / "value.py").write_text(EXIT)
    return workspace


def test_sim_reports_a_simulation_that_ends_its_process(built: Path) -> None:
    code, out, err = btbuild(built, "sim", "//book:value", "--format", "json")
    assert code == 1, out + err
    (row,) = json.loads(out)["targets"]
    assert row["label"] == "//book:value" and "ended its process" in row["error"], row
    code, out, err = btbuild(built, "sim", "//book:value")
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "//book:value" in errors[0] and "os._exit" in errors[0], err


def test_status_and_explain_say_unproven_when_the_simulation_ends_its_process(
    built: Path,
) -> None:
    code, out, err = btbuild(built, "status", "//...", "--date", "2024-01-03")
    assert code == 0, out + err
    line = next(line for line in out.splitlines() if line.startswith("//book:value 2024"))
    assert "code_changed: unproven: the simulation of //book:value ended its process" in line
    code, out, err = btbuild(
        built, "explain", "//book:value", "--date", "2024-01-03", "--format", "json"
    )
    assert code == 0, out + err
    report: dict[str, Any] = json.loads(out)
    assert report["verdict"]["verdict"] == "unproven", report["verdict"]
    assert "ended its process" in report["verdict"]["reason"]
    code, out, err = btbuild(built, "report", "--html", str(built / "html"), "--date", "2024-01-03")
    assert code == 0, out + err
    assert "ended its process" in (built / "html" / "index.html").read_text()


def test_status_gives_up_on_a_simulation_that_hangs_with_the_alarm_off(
    workspace: Path, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from btbuild.sim import isolated

    ws = ["--workspace", str(workspace)]
    code, report = run_cli(*ws, "build", "//...", "--date", "2024-01-03", "--format", "json")
    assert code == 0, report
    (workspace / "calculations" / "book" / "value.py").write_text(HANG)
    monkeypatch.setattr(isolated, "ANSWER_SECONDS", 8.0)
    started = time.monotonic()
    code, report = run_cli(
        *ws, "status", "//book:value", "--date", "2024-01-03", "--format", "json"
    )
    assert code == 0, report
    cells = [c for c in report["cells"] if c["label"] == "//book:value"]
    assert cells and all("did not finish within 8 s" in c["detail"] for c in cells), cells
    assert time.monotonic() - started < 60


def test_a_simulation_that_leaves_a_thread_and_an_atexit_handler_never_hangs_the_build(
    workspace: Path,
) -> None:
    """Code that leaves a non-daemon thread sleeping and an ``atexit`` handler that sleeps
    would keep the judge's child from ever exiting: the child skips the interpreter's
    teardown once closed (and is killed if it still does not end)."""
    code, _, err = build(workspace)
    assert code == 0, err
    (workspace / "calculations" / "book" / "value.py").write_text(
        hostile(
            "import atexit, threading, time\n"
            "        threading.Thread(target=time.sleep, args=(10**6,)).start()\n"
            "        atexit.register(time.sleep, 10**6)"
        ).replace('invested + book["cash"]', 'book["cash"] + invested')
    )
    started = time.monotonic()
    code, out, err = btbuild(workspace, "build", "//...", "--date", "2024-01-03")
    assert code == 0, out + err
    assert time.monotonic() - started < 100
