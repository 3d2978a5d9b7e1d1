"""dep_lookback: ctx.dep(name, days_ago=j) reads the dep's result of j days earlier; the
cell's inputs cover every result it may read; weekends (no result) read as None; an earlier
result that is not built blocks the cell."""

from __future__ import annotations

from datetime import date

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
