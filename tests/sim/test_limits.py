"""Time-outs and other machine-dependent outcomes are never evidence.

A call that times out (or raises MemoryError / RecursionError) under simulation says something
about the machine's load, not about the code: two versions that both time out on the same
worlds are not "equal", and one that times out only in the new version is not "different".
Such a simulation makes the verdict ``unproven`` (the cell re-runs), its SimHash is never
registered, and ``verify`` compares only the contexts neither version limited.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sim_helpers import VALUE, git, verify_json

from btbuild.session import Session
from btbuild.sim.optimizer import SimHashes
from btbuild.sim.runner import SimRunner

# slow only on large inputs: the real data (cash below 150,000) runs fast; the fabricated
# "huge" worlds (x 1e9) do not. Results are exactly VALUE's.
SLOW_ON_HUGE = VALUE.replace(
    "def value(ctx):\n",
    "def value(ctx):\n"
    "    import time\n"
    '    if abs(ctx.user["portfolio"]["cash"]) > 1e7:\n'
    "        end = time.process_time() + 1.5\n"
    "        while time.process_time() < end:\n"
    "            pass\n",
)
# the same, refactored (a helper renamed, the sum's operands swapped)
SLOW_ON_HUGE_REFACTORED = SLOW_ON_HUGE.replace("position_value", "line_value").replace(
    'invested + book["cash"]', 'book["cash"] + invested'
)
# a real behaviour change on every context (as well as slow on huge inputs)
SLOW_AND_WRONG = SLOW_ON_HUGE.replace('invested + book["cash"]', 'invested + 2 * book["cash"]')
# catches the time-out and answers anyway: still a time-out
SWALLOWS = """\
def value(ctx):
    try:
        while True:
            pass
    except BaseException:
        return {"worth": 1.0}
"""
EXITS = """\
import sys


def value(ctx):
    if ctx.user.id.endswith("1"):
        sys.exit(3)
    if ctx.user.id.endswith("2"):
        raise KeyboardInterrupt
    return {"worth": 1.0}
"""
RECURSES = """\
def depth(n):
    return n if n == 0 else 1 + depth(n - 1)


def value(ctx):
    return {"worth": depth(int(abs(ctx.user["portfolio"]["cash"])))}
"""


def _write(workspace: Path, code: str) -> None:
    (workspace / "calculations" / "book" / "value.py").write_text(code)


def _runner(workspace: Path, limit: float = 0.2) -> tuple[Session, SimRunner]:
    session = Session(workspace)
    return session, SimRunner(session.workspace, session.plugins.root_sources(), time_limit=limit)


def test_a_time_out_limits_the_target_and_everything_computed_from_it(workspace: Path) -> None:
    _write(workspace, SLOW_ON_HUGE)
    _, runner = _runner(workspace)
    value = runner.simulate("value")
    assert "//book:value timed out" in value.limited and not value.conclusive
    timed_out = [run for run in value.contexts if run.output == {"$raised": "timeout"}]
    assert timed_out and all(run.limited for run in timed_out)
    assert any(not run.limited for run in value.contexts)  # other worlds are evidence
    total = runner.simulate("total")  # per_date over the users: limited where value was
    assert "//book:value timed out" in total.limited
    limited_worlds = {run.world for run in timed_out}
    assert {run.world for run in total.contexts if run.limited} == limited_worlds


SLEEPS = """\
import time


def value(ctx):
    time.sleep(5)
    return {"worth": 1.0}
"""


def test_a_sleeping_call_hits_the_wall_time_limit(workspace: Path) -> None:
    _write(workspace, SLEEPS)
    _, runner = _runner(workspace, limit=0.02)  # 0.02 s of CPU time, 0.2 s of wall time
    result = runner.simulate("value")
    assert {json.dumps(run.output) for run in result.contexts} == {'{"$raised": "timeout"}'}
    assert "0.2 s of wall time" in result.limited


def test_catching_the_time_out_does_not_make_an_answer(workspace: Path) -> None:
    _write(workspace, SWALLOWS)
    _, runner = _runner(workspace, limit=0.05)
    result = runner.simulate("value")
    assert {json.dumps(run.output) for run in result.contexts} == {'{"$raised": "timeout"}'}
    assert result.limited


def test_exit_and_interrupt_raised_by_calc_code_are_outputs_not_the_end(workspace: Path) -> None:
    _write(workspace, EXITS)
    _, runner = _runner(workspace)
    result = runner.simulate("value")  # neither SystemExit nor KeyboardInterrupt escapes
    outputs = {json.dumps(run.output) for run in result.contexts}
    assert '{"$raised": "SystemExit"}' in outputs and '{"$raised": "KeyboardInterrupt"}' in outputs
    assert result.conclusive  # raising is deterministic: evidence like any exception


def test_recursion_depth_is_a_machine_limit(workspace: Path) -> None:
    _write(workspace, RECURSES)
    _, runner = _runner(workspace, limit=2.0)
    result = runner.simulate("value")
    assert "raised RecursionError" in result.limited


def _build(run_cli, workspace: Path) -> dict:
    code, report = run_cli(
        "--workspace", str(workspace), "build", "//...", "--date", "2024-01-03", "--format", "json"
    )
    assert code == 0, report
    return {(c["label"], c["date"]): c for c in report["cells"]}


def test_build_slow_only_in_the_new_version_reruns_and_registers_nothing(
    workspace: Path, run_cli
) -> None:
    _build(run_cli, workspace)
    _write(workspace, SLOW_ON_HUGE)  # same results, slow on fabricated huge inputs
    cells = _build(run_cli, workspace)
    cell = cells[("//book:value", "2024-01-03")]
    assert (cell["status"], cell["reason"]) == ("ran", "code_changed")
    assert "unproven" in cell["detail"] and "timed out" in cell["detail"], cell
    session = Session(workspace)
    try:
        sims = SimHashes(session)
        target = session.workspace.targets["value"]
        assert session.backend.get_sim_hash(sims.sim_key(target), sims.version) is None
        why = session.backend.get_sim_hash(sims.limited_key(target), sims.version)
        assert why is not None and "timed out" in why
    finally:
        session.close()

    # both versions slow: the old code's simulation proved nothing, so neither does equality
    _write(workspace, SLOW_ON_HUGE_REFACTORED)
    cells = _build(run_cli, workspace)
    cell = cells[("//book:value", "2024-01-03")]
    assert (cell["status"], cell["reason"]) == ("ran", "code_changed")
    assert "unproven" in cell["detail"] and "timed out" in cell["detail"], cell


@pytest.fixture
def repo(workspace: Path) -> Path:
    git(workspace, "init", "-q")
    git(workspace, "add", ".")
    git(workspace, "commit", "-q", "-m", "base")
    return workspace


def _commit(repo: Path, code: str) -> None:
    _write(repo, code)
    git(repo, "commit", "-q", "-am", "slow")


def test_verify_slow_only_in_the_new_version_is_unproven(repo: Path, run_cli) -> None:
    _write(repo, SLOW_ON_HUGE)
    code, report = verify_json(run_cli, repo)
    (change,) = report["changed"]
    assert change["verdict"] == "unproven" and "timed out" in change["reason"], change
    assert code == 1
    code, report = verify_json(run_cli, repo, "--allow-unproven")
    assert code == 0


def test_verify_both_versions_slow_is_unproven_not_cosmetic(repo: Path, run_cli) -> None:
    _commit(repo, SLOW_ON_HUGE)
    _write(repo, SLOW_ON_HUGE_REFACTORED)
    code, report = verify_json(run_cli, repo)
    (change,) = report["changed"]
    assert change["verdict"] == "unproven" and "timed out" in change["reason"], change
    assert code == 1


def test_verify_still_finds_a_behaviour_change_beside_time_outs(repo: Path, run_cli) -> None:
    _commit(repo, SLOW_ON_HUGE)
    _write(repo, SLOW_AND_WRONG)
    code, report = verify_json(run_cli, repo)
    (change,) = report["changed"]
    assert change["verdict"] == "behaviour_changed", change
    counter = change["counterexample"]
    assert counter["old"] != counter["new"]
    assert "timeout" not in json.dumps([counter["old"], counter["new"]])
    assert code == 1
