"""Root data re-ingested while a build runs: a cell never commits a result under a key that
names other data than it read (it is planned again with the data as it is then), and a
long-lived process never serves a day's data from before it was re-ingested."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from btbuild.execution import start as start_module
from btbuild.execution.environment import Environment
from tests.execution.conftest import Workspace, make_workspace, write_day

DAY = date(2024, 1, 2)


def _results(ws: Workspace, day: date) -> dict[str, Any]:
    with ws.backend() as backend:
        return {
            t: backend.read_result(t, day.isoformat()) for t in ("value", "total", "price_level")
        }


@pytest.fixture
def bumped(tmp_path: Path) -> dict[str, Any]:
    """What a clean build computes from the re-ingested data (prices up by 5)."""
    ws = make_workspace(tmp_path / "clean")
    write_day(ws.root, DAY, price_bump=5.0)
    ws.build(date=DAY.isoformat())
    return _results(ws, DAY)


@pytest.mark.parametrize("target", ["value", "price_level"])  # a per_user and a per_date cell
@pytest.mark.parametrize("revert", [False, True])
def test_data_re_ingested_while_a_cell_runs_is_never_committed_under_the_old_key(
    ws: Workspace,
    bumped: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    revert: bool,
) -> None:
    """The prices of the day are rewritten after the plan, before the cell reads them; with
    ``revert`` they are put back before its commit (A -> B -> A: the data as it is at the
    commit is the planned data, but the cell read B). Either way the build ends exit 0 and
    every cell holds what a clean build computes from the data as it is at the end."""
    ws.build(date=DAY.isoformat())
    state = {"rewritten": False}
    take_lease, roots_moved = start_module.take_lease, Environment.roots_moved

    def take_and_rewrite(env: Any, cell: Any, store: str) -> Any:
        lease = take_lease(env, cell, store)
        if (cell.name, cell.day) == (target, DAY) and not state["rewritten"]:
            state["rewritten"] = True
            write_day(ws.root, DAY, price_bump=5.0)
        return lease

    def revert_then_check(self: Environment, run_target: Any, cell: Any, read: Any) -> Any:
        if revert and (cell.name, cell.day) == (target, DAY):  # just before the commit
            write_day(ws.root, DAY)
        return roots_moved(self, run_target, cell, read)

    monkeypatch.setattr(start_module, "take_lease", take_and_rewrite)
    monkeypatch.setattr(Environment, "roots_moved", revert_then_check)
    code, _out, err = ws.cli("build", "//...", "--force", "--date", DAY.isoformat())
    monkeypatch.undo()
    assert code == 0 and state["rewritten"], err
    if not revert:  # computed from the new data, and recorded as such: nothing to re-run
        assert _results(ws, DAY) == bumped
        assert {c[0] for c in ws.cells(ws.build(date=DAY.isoformat())).values()} == {"skipped"}
        assert "read inputs that changed since their plan" in err
        return
    write_day(ws.root, DAY)  # the original data, as at the end of the build
    assert ws.cells(ws.build(date=DAY.isoformat()))[(f"//pricing:{target}", DAY.isoformat())] == (
        "skipped",
        "up_to_date",
    )
    clean = make_workspace(ws.root.parent / "original")
    clean.build(date=DAY.isoformat())
    assert _results(ws, DAY) == _results(clean, DAY)
    assert "read inputs that changed since their plan" in err


def test_a_long_lived_process_reloads_a_day_re_ingested_since(ws: Workspace) -> None:
    """One Environment (a ``btbuild worker`` keeps one for every task it runs): a day's data
    loaded once and then re-ingested is loaded again, not served from its cache."""
    from btbuild.session import execution_context

    ws.build(date=DAY.isoformat())
    env = Environment.of(execution_context(str(ws.root), ()))
    before = env.load_root("prices", DAY)
    assert env.load_root("prices", DAY) is before  # cached while unchanged
    write_day(ws.root, DAY, price_bump=5.0)
    after = env.load_root("prices", DAY)
    assert after["AAA"]["close"] == before["AAA"]["close"] + 5.0


@pytest.mark.parametrize("target", ["value", "price_level"])  # a user stream, a day's load
def test_data_rewritten_after_its_fingerprint_and_put_back_is_never_committed(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    """The day's file is rewritten in the moment between the fingerprint the attempt takes
    and the read itself (the user stream opened after the cell was wired; a day's value
    loaded after its fingerprint was compared with the cache's), then put back before the
    commit: every fingerprint the commit compares is the planned one, but the cell computed
    from other data. Only the digest of the bytes actually read tells; the build ends exit 0
    with every cell what a clean build computes from the data as it is at the end."""
    from btbuild.execution.streams import StreamTable

    ws.build(date=DAY.isoformat())
    state = {"armed": False, "rewritten": False}
    take_lease, roots_moved = start_module.take_lease, Environment.roots_moved
    table_open, fingerprint = StreamTable.open, Environment.fingerprint

    def rewrite() -> None:
        state["armed"], state["rewritten"] = False, True
        if target == "value":  # the user records only (the day's prices read are planned)
            write_day(ws.root, DAY, users=["u001", "u002"])
        else:
            write_day(ws.root, DAY, price_bump=5.0)

    def take_and_arm(env: Any, cell: Any, store: str) -> Any:
        lease = take_lease(env, cell, store)
        if (cell.name, cell.day) == (target, DAY) and not state["rewritten"]:
            state["armed"] = True
        return lease

    def open_after_wiring(self: StreamTable) -> Any:
        if state["armed"] and self.group.day == DAY:
            rewrite()
        return table_open(self)

    def fingerprint_then_rewrite(self: Environment, source: str, day: date) -> Any:
        stamp = fingerprint(self, source, day)
        if state["armed"] and (source, day) == ("prices", DAY):
            rewrite()
        return stamp

    def put_back_then_check(self: Environment, run_target: Any, cell: Any, read: Any) -> Any:
        if state["rewritten"] and (cell.name, cell.day) == (target, DAY):
            write_day(ws.root, DAY)
        return roots_moved(self, run_target, cell, read)

    monkeypatch.setattr(start_module, "take_lease", take_and_arm)
    monkeypatch.setattr(StreamTable, "open", open_after_wiring)
    monkeypatch.setattr(Environment, "fingerprint", fingerprint_then_rewrite)
    monkeypatch.setattr(Environment, "roots_moved", put_back_then_check)
    # the target alone: no other cell of the process has the day's prices loaded already
    code, _out, err = ws.cli("build", f"//pricing:{target}", "--force", "--date", DAY.isoformat())
    monkeypatch.undo()
    assert code == 0 and state["rewritten"], err
    assert "read inputs that changed since their plan" in err
    clean = make_workspace(ws.root.parent / "original")
    clean.build(date=DAY.isoformat())
    assert _results(ws, DAY)[target] == _results(clean, DAY)[target]
