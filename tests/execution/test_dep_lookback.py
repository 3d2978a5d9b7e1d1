"""dep_lookback: ctx.dep(name, days_ago=j) reads the dep's result of j days earlier; the
cell's inputs cover every result it may read; weekends (no result) read as None; an earlier
result that is not built blocks the cell."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest

BUILD = """
[calculation.week_totals]
entry = "history:week_totals"
kind = "per_date"
deps = ["//pricing:total"]
dep_lookback = { total = 3 }

[calculation.value_history]
entry = "history:value_history"
deps = ["//pricing:value"]
dep_lookback = { value = 3 }
checks = { flatline = false }
"""

CODE = """
def week_totals(ctx):
    days = {}
    for back in range(4):
        total = ctx.dep("total", days_ago=back)
        days[str(back)] = None if total is None else total["total"]
    return days

def value_history(ctx):
    return [ctx.dep("//pricing:value", days_ago=back) for back in range(4)]
"""

MONDAY = date(2024, 1, 8)  # 2024-01-06/07 is a weekend: no data, pricing cells impossible


@pytest.fixture
def hist(ws, day_writer):
    day_writer(ws.root, MONDAY)
    ws.write("calculations/history/BUILD.toml", BUILD)
    ws.write("calculations/history/history.py", CODE)
    return ws


def test_reads_the_right_days_across_a_weekend_gap(hist):
    report = hist.build(date="2024-01-08")
    cells = hist.cells(report)
    assert cells[("//history:week_totals", "2024-01-08")][0] == "ran", report
    assert cells[("//pricing:total", "2024-01-06")][0] == "impossible"
    backend = hist.backend()
    totals = {d: backend.read_result("total", d) for d in ("2024-01-05", "2024-01-08")}
    monday = backend.read_result("week_totals", "2024-01-08")
    # Sunday and Saturday have no result (None); three days back is Friday
    assert monday == {
        "0": totals["2024-01-08"]["total"],
        "1": None,
        "2": None,
        "3": totals["2024-01-05"]["total"],
    }
    wednesday = backend.read_result("week_totals", "2024-01-03")
    # three days before 2024-01-03 is before the workspace's start_date: no result
    assert [wednesday[k] is None for k in "0123"] == [False, False, False, True]
    values = {d: backend.read_result("value", d) for d in ("2024-01-05", "2024-01-08")}
    history = backend.read_result("value_history", "2024-01-08")
    user = "u001"
    assert history[user] == [values["2024-01-08"][user], None, None, values["2024-01-05"][user]]


def test_an_earlier_dep_result_is_an_input_of_the_cell(hist, day_writer):
    hist.build(date="2024-01-08")
    day_writer(hist.root, date(2024, 1, 5), price_bump=1.0)  # Friday's data changes
    report = hist.build(date="2024-01-08")
    ran = {(c["label"], c["date"]) for c in report["cells"] if c["status"] == "ran"}
    assert ("//history:week_totals", "2024-01-08") in ran  # reads Friday as days_ago=3
    assert ("//history:value_history", "2024-01-08") in ran
    assert ("//history:week_totals", "2024-01-04") not in ran  # cannot see Friday
    record = hist.backend().get_cell("week_totals", "2024-01-08")
    assert set(record.dep_results) == {
        "//pricing:total",
        "//pricing:total@-1",
        "//pricing:total@-2",
        "//pricing:total@-3",
    }
    assert record.dep_results["//pricing:total@-1"] == "-"  # Sunday: no result
    assert not [c for c in hist.build(date="2024-01-08")["cells"] if c["status"] == "ran"]


def test_an_unbuilt_earlier_result_blocks_the_cell(hist):
    report = hist.build("--from", "2024-01-08", date="2024-01-08", expect=1)  # incomplete
    status, reason = hist.cells(report)[("//history:week_totals", "2024-01-08")]
    assert (status, reason) == ("blocked", "waiting_for_deps")
    detail = next(c["detail"] for c in report["cells"] if c["label"] == "//history:week_totals")
    assert "//pricing:total on 2024-01-05 (days_ago=3)" in detail
    hist.build(date="2024-01-05")  # every earlier day
    report = hist.build("--from", "2024-01-08", date="2024-01-08")
    assert hist.cells(report)[("//history:week_totals", "2024-01-08")][0] == "ran"


def test_reading_beyond_the_declared_dep_lookback_fails_clearly(hist):
    hist.edit(
        "calculations/history/BUILD.toml",
        "dep_lookback = { total = 3 }",
        "dep_lookback = { total = 2 }",
    )
    report = hist.build("//history:week_totals", date="2024-01-08", expect=1)
    error = next(c["detail"] for c in report["cells"] if c["status"] == "failed")
    assert "ctx.dep('total', days_ago=3) is beyond its dep_lookback of 2 day(s)" in error
    assert "declare dep_lookback = { total = 3 }" in error


def test_dep_lookback_must_name_a_dep(hist):
    hist.edit(
        "calculations/history/BUILD.toml",
        "dep_lookback = { total = 3 }",
        "dep_lookback = { totl = 3 }",
    )
    code, _, err = hist.cli("build", "//...", "--date", "2024-01-08")
    assert code == 2
    assert (
        "//history:week_totals: dep_lookback names 'totl', which is not one of its deps (total)"
        in err
    )


def _cell_rows(db: Path, target: str, day: str) -> tuple[list[Any], list[Any]]:
    conn = sqlite3.connect(db)
    try:
        where = "WHERE target = ? AND date = ?"
        cells = conn.execute(f"SELECT * FROM cells {where}", [target, day]).fetchall()
        shards = conn.execute(f"SELECT * FROM shards {where}", [target, day]).fetchall()
    finally:
        conn.close()
    return cells, shards


def _put_rows(db: Path, target: str, day: str, rows: tuple[list[Any], list[Any]]) -> None:
    conn = sqlite3.connect(db, timeout=30)
    try:
        with conn:
            where = "WHERE target = ? AND date = ?"
            conn.execute(f"DELETE FROM cells {where}", [target, day])
            conn.execute(f"DELETE FROM shards {where}", [target, day])
            for table, table_rows in zip(("cells", "shards"), rows, strict=True):
                for row in table_rows:
                    marks = ", ".join("?" * len(row))
                    conn.execute(f"INSERT INTO {table} VALUES ({marks})", row)
    finally:
        conn.close()


@pytest.mark.parametrize(("target", "dep"), [("week_totals", "total"), ("value_history", "value")])
def test_an_earlier_result_replaced_and_put_back_meanwhile_is_never_read(
    hist, day_writer, monkeypatch, tmp_path, target, dep
):
    """Another builder commits a different earlier result of the dep after the plan, and a
    third puts the planned one back before the cell commits (so the commit's own check of
    its deps passes): the cell must not compute from the result it was not planned with. It
    is planned again (``deps moved``) and ends computed from the planned result; the other
    builders' results are never forgotten as damaged."""
    from btbuild.execution import start as start_module
    from btbuild.storage.base import ResultWriter

    friday = "2024-01-05"
    other = Path(shutil.copytree(hist.root, tmp_path / "other"))
    day_writer(other, date(2024, 1, 5), price_bump=1.0)  # the other builder's data
    hist.build(date="2024-01-08")
    other_code, _, err = hist.cli(
        "--workspace", str(other), "build", f"//pricing:{dep}", "--date", friday
    )
    db, other_db = (root / ".btbuild" / "cache.db" for root in (hist.root, other))
    planned, replaced = _cell_rows(db, dep, friday), _cell_rows(other_db, dep, friday)
    assert other_code == 0 and planned[0][0] != replaced[0][0], err
    hist.build(f"//history:{target}", "--force", date="2024-01-08")  # nothing else to do
    state = {"swapped": False}
    take_lease, commit = start_module.take_lease, ResultWriter.commit

    def take_and_replace(env, cell, store):  # after the plan: the other builder commits
        lease = take_lease(env, cell, store)
        if (cell.name, cell.day) == (target, MONDAY) and not state["swapped"]:
            state["swapped"] = True
            _put_rows(db, dep, friday, replaced)
        return lease

    def put_back_and_commit(self, **kwargs):  # a third builder puts the planned one back
        if (self.lease.target, self.lease.date) == (target, MONDAY.isoformat()):
            _put_rows(db, dep, friday, planned)
        return commit(self, **kwargs)

    monkeypatch.setattr(start_module, "take_lease", take_and_replace)
    monkeypatch.setattr(ResultWriter, "commit", put_back_and_commit)
    code, out, err = hist.cli(
        "build", f"//history:{target}", "--force", "--date", "2024-01-08", "--format", "json"
    )
    assert code == 0 and state["swapped"], err
    monkeypatch.undo()
    assert _cell_rows(db, dep, friday) == planned  # never forgotten as damaged
    fresh = json.loads(
        hist.cli("show", f"//history:{target}", "--date", "2024-01-08", "--format", "json")[1]
    )
    hist.build(f"//history:{target}", "--force", date="2024-01-08")  # recomputed undisturbed
    again = json.loads(
        hist.cli("show", f"//history:{target}", "--date", "2024-01-08", "--format", "json")[1]
    )
    assert fresh["value"] == again["value"], out
    # the read saw the replaced result and gave the cell back to be planned again (the dep
    # cell itself may be counted too: this build skipped it, and its result moved since)
    assert "cells read inputs that changed since their plan" in err


@pytest.mark.parametrize(("target", "dep"), [("week_totals", "total"), ("value_history", "value")])
def test_an_earlier_result_damaged_after_the_plan_fails_its_reader_cleanly(
    hist, monkeypatch, target, dep
):
    """Damage to a look-back day's result between the plan and the read: the reader fails
    this build (exit 1, one reason, no internal error), and the next build rebuilds the
    damaged cell and the reader."""
    from btbuild.execution import start as start_module

    friday = "2024-01-05"
    hist.build(date="2024-01-08")
    before = hist.backend().read_result(target, "2024-01-08")
    db = hist.root / ".btbuild" / "cache.db"
    take_lease = start_module.take_lease

    def take_and_damage(env, cell, store):
        lease = take_lease(env, cell, store)
        if (cell.name, cell.day) == (target, MONDAY):
            conn = sqlite3.connect(db, timeout=30)
            with conn:
                conn.execute(
                    "UPDATE shards SET data = substr(data, 1, length(data) / 2) "
                    "WHERE target = ? AND date = ?",
                    [dep, friday],
                )
            conn.close()
        return lease

    monkeypatch.setattr(start_module, "take_lease", take_and_damage)
    report = hist.build(f"//history:{target}", "--force", date="2024-01-08", expect=1)
    monkeypatch.undo()
    failed = [c for c in report["cells"] if c["status"] == "failed"]
    assert [(c["label"], c["date"]) for c in failed] == [(f"//history:{target}", "2024-01-08")]
    assert f"{dep} on {friday}" in failed[0]["detail"] and "damaged" in failed[0]["detail"]
    again = hist.cells(hist.build(date="2024-01-08"))
    assert again[(f"//pricing:{dep}", friday)] == ("ran", "new")
    # the reader kept its earlier result, computed from the same (rebuilt) input
    assert again[(f"//history:{target}", "2024-01-08")] == ("skipped", "up_to_date")
    assert hist.backend().read_result(target, "2024-01-08") == before
