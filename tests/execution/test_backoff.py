"""Retries of a failed cell back off exponentially in the local executor too (issue 15):
``[execution] retry_backoff`` seconds before the first retry, doubling with each attempt. A
local build makes one attempt per cell; the next build waits until the retry is due. The
attempt and the time of the next retry are on the record, so ``explain`` shows them."""

from __future__ import annotations

import time
from pathlib import Path

from tests.execution.conftest import Workspace, make_workspace

D = "2024-01-03"
F = "//pricing:flaky"
FLAKY_BUILD = """
[calculation.flaky]
entry = "flaky:flaky"
kind = "per_date"
roots = ["prices"]
"""
FLAKY = """\
import pathlib

# outside the workspace: a workspace file the code names is one of its inputs (a changed
# count would be new inputs, not a retry)
LEFT = pathlib.Path(__file__).parents[3] / "failures_left.txt"


def flaky(ctx):
    left = int(LEFT.read_text())
    if left > 0:
        LEFT.write_text(str(left - 1))
        raise RuntimeError(f"transient failure ({left} left)")
    return len(ctx.root("prices"))
"""


def flaky_workspace(root: Path, backoff: int, failures: int) -> Workspace:
    ws = make_workspace(root, execution=f"max_attempts = 3\nretry_backoff = {backoff}\n")
    ws.edit(
        "calculations/pricing/BUILD.toml",
        "[calculation.value]",
        FLAKY_BUILD + "\n[calculation.value]",
    )
    ws.write("calculations/pricing/flaky.py", FLAKY)
    (root.parent / "failures_left.txt").write_text(str(failures))
    return ws


def explained(ws: Workspace) -> str:
    code, out, err = ws.cli("explain", F, "--date", D)
    assert code == 0, err
    return out


def test_a_calc_failing_twice_commits_on_its_third_attempt_after_backing_off(
    tmp_path: Path,
) -> None:
    backoff = 1
    ws = flaky_workspace(tmp_path / "ws", backoff, failures=2)
    first = ws.cells(ws.build(F, "--from", D, date=D, expect=1))
    assert first[(F, D)] == ("failed", "new")
    assert "attempt 1 of 3; next retry at" in explained(ws)
    assert f"in {backoff} s)" in explained(ws)
    code, _out, err = ws.cli("build", F, "--from", D, "--date", D, "--format", "json")
    assert code == 1 and "its retry is due at" in err and "(back-off)" in err, err
    assert "attempt 2 of 3; next retry at" in explained(ws)
    assert f"in {2 * backoff} s)" in explained(ws)
    third = ws.cells(ws.build(F, "--from", D, "--jobs", "2", date=D))  # dispatch waits too
    assert third[(F, D)] == ("ran", "retry")
    backend = ws.backend()
    record = backend.get_cell("flaky", D)
    assert record.status == "committed" and record.attempts == 3, record
    runs = sorted(backend.runs("flaky"), key=lambda run: run.started)
    assert [run.status for run in runs] == ["failed", "failed", "committed"], runs
    gaps = [b.started - (a.started + a.duration) for a, b in zip(runs, runs[1:], strict=False)]
    print(f"\nretries after {', '.join(f'{gap:.2f} s' for gap in gaps)} (back-off 1, 2 s)")
    assert 0.8 * backoff <= gaps[0] < backoff + 30, gaps
    assert 0.8 * 2 * backoff <= gaps[1] < 2 * backoff + 30, gaps
    assert gaps[1] > gaps[0], gaps


def test_changed_inputs_do_not_wait_for_the_back_off(tmp_path: Path) -> None:
    """A failed cell whose code (or data) changed is a fresh cell: it runs at once, with a
    fresh count of attempts, however long the back-off of its old inputs is."""
    ws = flaky_workspace(tmp_path / "ws", 600, failures=1)
    assert ws.cells(ws.build(F, "--from", D, date=D, expect=1))[(F, D)] == ("failed", "new")
    assert "next retry at" in explained(ws) and "in 600 s)" in explained(ws)
    ws.edit("calculations/pricing/flaky.py", "return len(", "return 1 + len(")
    started = time.monotonic()
    assert ws.cells(ws.build(F, "--from", D, date=D))[(F, D)] == ("ran", "retry")
    assert time.monotonic() - started < 60


def test_a_dry_run_and_status_do_not_wait(tmp_path: Path) -> None:
    ws = flaky_workspace(tmp_path / "ws", 600, failures=1)
    ws.build(F, "--from", D, date=D, expect=1)
    started = time.monotonic()
    status = ws.cells(ws.build(F, "--from", D, "--dry-run", date=D))
    assert status[(F, D)] == ("runnable", "retry")
    code, out, err = ws.cli("status", F, "--from", D, "--date", D, "--format", "json")
    assert code in (0, 1), err
    assert "next retry at" in out, out
    assert time.monotonic() - started < 60
