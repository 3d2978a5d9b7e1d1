"""Retention: gc expires old results (shards gone, records kept); status shows them; a later
build recomputes exactly the expired results a running cell reads, and says so."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

HISTORY = """
[calculation.running]
entry = "running:running"
kind = "per_date"
deps = ["//pricing:total"]
historical = true
ttl_days = 1
"""

RUNNING = """
def running(ctx):
    before = ctx.previous["sum"] if ctx.previous else 0.0
    return {"sum": round(before + ctx.dep("total")["total"], 6)}
"""


@pytest.fixture
def kept(ws):
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'entry = "calcs:value"\n',
        'entry = "calcs:value"\nttl_days = 2\n',
    )
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'entry = "totals:total"\n',
        'entry = "totals:total"\nttl_days = 2\n',
    )
    return ws


def ran(report):
    return {(c["label"], c["date"], c["reason"]) for c in report["cells"] if c["status"] == "ran"}


def test_gc_expires_old_results_and_keeps_their_records(kept):
    kept.build(date="2024-01-05")
    backend = kept.backend()
    before = {d: backend.get_cell("total", d) for d in ("2024-01-03", "2024-01-04")}
    code, out, _ = kept.cli("gc", "--as-of", "2024-01-06", "--dry-run")
    assert code == 0 and "would expire 6 result(s)" in out
    assert backend.read_result("total", "2024-01-01") is not None  # dry run: nothing deleted
    code, out, _ = kept.cli("gc", "--as-of", "2024-01-06", "--format", "json")
    gone = json.loads(out)["expired"]
    assert {(r["label"], r["date"]) for r in gone} == {
        (label, f"2024-01-0{d}")
        for label in ("//pricing:value", "//pricing:total")
        for d in (1, 2, 3)
    }
    after = backend.get_cell("total", "2024-01-03")
    assert after.status == "expired" and after.generation is None
    assert after.result_hash == before["2024-01-03"].result_hash  # dependents' hashes hold
    assert after.composite_hash == before["2024-01-03"].composite_hash
    assert backend.read_result("total", "2024-01-03") is None  # the shards are gone
    assert backend.get_cell("total", "2024-01-04") == before["2024-01-04"]  # within its ttl
    assert backend.runs("total")  # the run log is kept
    code, out, _ = kept.cli("status", "//pricing:total", "--date", "2024-01-05")
    assert "eee.." in out.splitlines()[3] and "e expired" in out
    assert not ran(kept.build(date="2024-01-05"))  # nobody needs them: nothing re-runs


def test_a_build_needing_an_expired_result_recomputes_exactly_that(kept):
    kept.build(date="2024-01-05")
    old = kept.backend().get_cell("total", "2024-01-02").result_hash
    kept.cli("gc", "--as-of", "2024-01-06")
    kept.edit("calculations/pricing/signs.py", "> 0", ">= 0")  # sign re-runs on every date
    report = kept.build(date="2024-01-05")
    days = [f"2024-01-0{d}" for d in range(1, 6)]
    assert (
        ran(report)
        == {("//pricing:sign", d, "code_changed") for d in days}
        | {
            (label, d, "expired")
            for label in ("//pricing:total", "//pricing:value")  # total reads value: both
            for d in days[:3]
        }
    )
    backend = kept.backend()
    assert backend.get_cell("total", "2024-01-02").result_hash == old
    assert backend.read_result("total", "2024-01-02") is not None
    assert not ran(kept.build(date="2024-01-05"))


def test_an_expired_previous_result_is_recomputed_for_a_historical_target(kept, day_writer):
    kept.write("calculations/history/BUILD.toml", HISTORY)
    kept.write("calculations/history/running.py", RUNNING)
    kept.build(date="2024-01-05")
    sums = {d: kept.backend().read_result("running", d) for d in ("2024-01-05",)}
    kept.cli("gc", "--as-of", "2024-01-07")  # running: everything before 01-06 expires
    day_writer(kept.root, date(2024, 1, 8))
    report = kept.build("--from", "2024-01-08", date="2024-01-08")
    # 01-08 reads 01-05 as ctx.previous, which reads 01-04, ... : the chain is recomputed,
    # and so are the expired totals it reads (total's ttl is 2 days: 01-01 .. 01-04)
    expired = {(label, d) for label, d, reason in ran(report) if reason == "expired"}
    assert {d for label, d in expired if label == "//history:running"} == {
        f"2024-01-0{d}" for d in range(1, 6)
    }
    assert ("//history:running", "2024-01-08", "new") in ran(report)
    assert kept.backend().read_result("running", "2024-01-05") == sums["2024-01-05"]
    final = kept.backend().read_result("running", "2024-01-08")
    total = kept.backend().read_result("total", "2024-01-08")["total"]
    assert final["sum"] == pytest.approx(sums["2024-01-05"]["sum"] + total)


def test_ttl_errors_are_workspace_errors(ws):
    ws.edit(
        "calculations/pricing/BUILD.toml",
        'entry = "totals:total"\n',
        'entry = "totals:total"\nttl_days = 0\n',
    )
    code, _, err = ws.cli("gc", "--dry-run")
    assert code == 2 and "//pricing:total: ttl_days must be a whole number of days from 1" in err


def test_workspace_default_ttl(ws):
    ws.edit(
        "BUILD.toml", 'start_date = "2024-01-01"\n', 'start_date = "2024-01-01"\nttl_days = 3\n'
    )
    ws.build(date="2024-01-05")
    code, out, _ = ws.cli("gc", "--as-of", "2024-01-05", "--dry-run", "--format", "json")
    rows = json.loads(out)["would_expire"]
    assert {r["date"] for r in rows} == {"2024-01-01"}
    assert len(rows) == 4  # every target of the workspace
    assert (date(2024, 1, 5) - timedelta(days=3)).isoformat() == "2024-01-02"


def test_show_says_a_result_expired(kept):
    kept.build(date="2024-01-05")
    kept.cli("gc", "--as-of", "2024-01-06")
    code, _, err = kept.cli("show", "//pricing:total", "--date", "2024-01-02")
    assert code == 1 and "it expired and was collected (btbuild gc)" in err


def test_gc_leaves_a_cell_rebuilt_or_taken_since_it_was_read(kept):
    """gc expires each result atomically: a cell another builder re-committed after gc read
    it, or holds a live lease on, keeps its record and result."""
    from btbuild.execution.retention import collect
    from btbuild.workspace.config import load_workspace

    kept.build(date="2024-01-05")
    backend = kept.backend()
    real = backend.get_cells

    def racing(names, days):
        found = real(names, days)
        if list(names) == ["total"]:  # another builder, between gc's read and its expiry
            code, _, err = kept.cli(
                "build", "//pricing:total", "--date", "2024-01-02", "--force", "--format", "json"
            )
            assert code == 0, err
            backend.acquire("total", "2024-01-03", "another-builder", 600)
        return found

    backend.get_cells = racing
    report = collect(backend, load_workspace(kept.root), date(2024, 1, 6))
    # the build up to 2024-01-02 re-committed total's first two days; the third is leased
    assert set(report.expired) == {("//pricing:value", f"2024-01-0{d}") for d in (1, 2, 3)}
    fresh = kept.backend()
    rebuilt = fresh.get_cell("total", "2024-01-02")
    assert rebuilt.status == "committed" and fresh.read_result("total", "2024-01-02") is not None
    assert fresh.get_cell("total", "2024-01-03").status == "running"  # the lease is untouched
