"""The runner: exceptions and time-outs are outputs; declaration checks apply; sim CLI."""

from __future__ import annotations

import json
from pathlib import Path

from btbuild.session import Session
from btbuild.sim.runner import SimRunner

LOOPS_OR_RAISES = """\
def value(ctx):
    if len(ctx.user.id) < 4:
        while True:
            pass
    return 1 / 0
"""

UNDECLARED = """\
def value(ctx):
    return ctx.root("benchmarks")
"""


def test_exceptions_and_timeouts_are_outputs(workspace: Path) -> None:
    (workspace / "calculations" / "book" / "value.py").write_text(LOOPS_OR_RAISES)
    session = Session(workspace)
    result = SimRunner(session.workspace, session.plugins.root_sources(), time_limit=0.05).simulate(
        "value"
    )
    outputs = {json.dumps(run.output) for run in result.contexts}
    assert outputs == {'{"$raised": "timeout"}', '{"$raised": "ZeroDivisionError"}'}
    total = SimRunner(session.workspace, session.plugins.root_sources(), time_limit=0.05).simulate(
        "total"
    )
    assert all(
        run.output == {"users": 0, "worth": 0} for run in total.contexts
    )  # failed users are absent


def test_declaration_checks_apply(workspace: Path) -> None:
    (workspace / "calculations" / "book" / "value.py").write_text(UNDECLARED)
    session = Session(workspace)
    result = SimRunner(session.workspace, session.plugins.root_sources()).simulate("value")
    assert {json.dumps(run.output) for run in result.contexts} == {
        '{"$raised": "CalculationError"}'
    }


def test_sim_command(workspace: Path, run_cli) -> None:
    code, report = run_cli("--workspace", str(workspace), "sim", "//book:*", "--format", "json")
    assert code == 0
    rows = {row["label"]: row for row in report["targets"]}
    assert set(rows) == {"//book:value", "//book:total"}
    assert rows["//book:total"]["contexts"] >= 64 and rows["//book:value"]["contexts"] > 64
    code, again = run_cli("--workspace", str(workspace), "sim", "//book:*", "--format", "json")
    assert again == report
    code, text = run_cli("--workspace", str(workspace), "sim", "//book:nope", parse=False)
    assert code == 2 and "Traceback" not in text
