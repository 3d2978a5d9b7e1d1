"""`btbuild show`, `btbuild log` and `btbuild diff-cache` on the SQLite cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from btbuild.errors import UsageError
from btbuild.readers.jsonpath import MISSING, format_path, parse_path, select
from tests.execution.conftest import USERS, Workspace, make_workspace


@pytest.fixture
def built(tmp_path: Path) -> Workspace:
    w = make_workspace(tmp_path / "ws")
    w.build()
    return w


def test_show_one_user_names_the_run_that_computed_it(built: Workspace):
    code, out, err = built.cli("show", "//pricing:value", "--date", "2024-01-02", "--user", "u002")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "//pricing:value 2024-01-02"
    assert f"{len(USERS)} users" in lines[1]
    record = built.backend().get_cell("value", "2024-01-02")
    assert record.result_hash in lines[1]
    assert "by run" in lines[2] and "(reason new)" in lines[2]
    # u002 holds 2 x BBB at close 10 + 1 + 1 day
    assert json.loads("\n".join(lines[3:])) == pytest.approx(2 * 12.0)


def test_show_whole_cell_streams_every_user_as_json(built: Workspace):
    code, out, err = built.cli(
        "show", "//pricing:value", "--date", "2024-01-03", "--format", "json"
    )
    assert code == 0, err
    data = json.loads(out)
    stored = built.backend().read_result("value", "2024-01-03")
    assert data["value"] == stored and len(stored) == len(USERS)
    assert data["users"] == len(USERS) and data["kind"] == "per_user"
    assert data["result_hash"] == built.backend().get_cell("value", "2024-01-03").result_hash
    assert data["trigger"] == "new" and data["run_id"]


def test_show_per_date_with_a_path(built: Workspace):
    code, out, err = built.cli(
        "show", "//pricing:total", "--date", "2024-01-01", "--path", "$.users", "--format", "json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["value"] == len(USERS) and data["found"] is True and data["path"] == "$.users"
    code, out, _ = built.cli("show", "//pricing:total", "--date", "2024-01-01", "--path", "nope")
    assert code == 0 and out.splitlines()[-1] == "(path not found)"


def test_show_says_why_there_is_no_result(built: Workspace):
    code, out, err = built.cli("show", "//pricing:value", "--date", "2024-02-01")
    assert code == 1 and out == ""
    assert err.strip() == (
        "btbuild: error: //pricing:value on 2024-02-01 has no result: it was never built "
        "(btbuild build //pricing:value --date 2024-02-01)"
    )
    code, _, err = built.cli("show", "//pricing:value", "--date", "2024-01-02", "--user", "zzz")
    assert code == 1 and "has no value for user 'zzz'" in err
    code, _, err = built.cli("show", "//pricing:total", "--date", "2024-01-02", "--user", "u001")
    assert code == 2 and "per_date" in err
    code, _, err = built.cli("show", "//pricing:*", "--date", "2024-01-02")
    assert code == 2 and "show takes one target" in err


def test_show_failed_cell_reports_the_error(tmp_path: Path):
    w = make_workspace(tmp_path / "ws")
    w.edit(
        "calculations/pricing/totals.py", "return {", "raise ValueError('bad day')\n    return {"
    )
    w.build("--date", "2024-01-01", expect=1)
    code, _, err = w.cli("show", "//pricing:total", "--date", "2024-01-01")
    assert code == 1
    assert "//pricing:total on 2024-01-01 has no result: it failed after 1 attempt(s)" in err
    assert "ValueError: bad day" in err and len(err.strip().splitlines()) == 1


def test_show_refuses_a_damaged_result(built: Workspace):
    backend = built.backend()
    record = backend.get_cell("total", "2024-01-02")
    backend._write_shards("total", "2024-01-02", record.generation, {0: b"garbage"})
    backend.close()
    code, out, err = built.cli("show", "//pricing:total", "--date", "2024-01-02")
    assert code == 1 and "its stored result is damaged" in err and out == ""


def test_log_lists_attempts_with_trigger_and_changed_inputs(built: Workspace):
    built.edit("calculations/pricing/totals.py", "round(", "1 + round(")
    built.build("--date", "2024-01-03")
    code, out, err = built.cli("log", "//pricing:total", "--last", "3", "--format", "json")
    assert code == 0, err
    runs = json.loads(out)["runs"]
    assert [run["date"] for run in runs] == ["2024-01-03", "2024-01-02", "2024-01-01"]
    assert all(run["label"] == "//pricing:total" for run in runs)
    assert all(run["trigger"] == "code_changed" and run["changed"] == ["code"] for run in runs)
    assert all(run["status"] == "committed" and run["users"] == 1 for run in runs)
    assert all(run["shards"] == 1 and set(run["phases"]) >= {"compute"} for run in runs)
    # the dependent re-ran because its dep's result moved
    code, out, _ = built.cli("log", "//pricing:sign", "--date", "2024-01-02", "--format", "json")
    newest = json.loads(out)["runs"][0]
    assert newest["trigger"] == "deps_changed" and newest["changed"] == ["deps://pricing:total"]


def test_log_filters_by_date_range_run_and_count(built: Workspace):
    code, out, _ = built.cli("log", "--from", "2024-01-03", "--last", "100", "--format", "json")
    runs = json.loads(out)["runs"]
    assert runs and {run["date"] for run in runs} == {"2024-01-03"}
    assert len(runs) == 4  # four targets, one date
    run_id = runs[0]["run_id"]
    code, out, _ = built.cli("log", "--run", run_id, "--last", "100", "--format", "json")
    assert len(json.loads(out)["runs"]) == 12  # the build ran 4 targets x 3 dates
    code, out, _ = built.cli("log", "--last", "2")
    assert code == 0 and out.count(" committed ") == 2
    code, _, err = built.cli("log", "--date", "2024-01-01", "--from", "2024-01-01")
    assert code == 2 and "exclude each other" in err


def test_diff_cache_finds_cells_that_differ(built: Workspace, tmp_path: Path):
    other = tmp_path / "other.db"
    shutil.copy(built.root / ".btbuild" / "cache.db", other)
    code, out, err = built.cli(
        "diff-cache", str(other), "//...", "--date", "2024-01-03", "--from", "2024-01-01"
    )
    assert code == 0, err
    assert "summary: 12 same, 0 different" in out
    # a second workspace with other code: its cache differs in `total` and what reads it
    w2 = make_workspace(tmp_path / "ws2")
    w2.edit("calculations/pricing/totals.py", "round(", "2 + round(")
    w2.build(date="2024-01-02")
    code, out, err = built.cli(
        "diff-cache",
        str(w2.root),
        "//...",
        "--date",
        "2024-01-03",
        "--from",
        "2024-01-01",
        "--format",
        "json",
    )
    assert code == 1 and "cells differ between the caches" in err
    data = json.loads(out)
    verdicts = {(c["label"], c["date"]): c["verdict"] for c in data["cells"]}
    assert verdicts[("//pricing:total", "2024-01-01")] == "different"
    assert verdicts[("//pricing:value", "2024-01-03")] == "only_here"
    assert ("//pricing:value", "2024-01-01") not in verdicts  # same
    assert data["ok"] is False
    code, _, err = built.cli(
        "diff-cache", str(tmp_path / "nope.db"), "//...", "--date", "2024-01-01"
    )
    assert code == 2 and "no such file or folder" in err


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("$", ()),
        ("risk", ("risk",)),
        ("$.risk.bands[0]", ("risk", "bands", 0)),
        ('$["a.b"][-1]', ("a.b", -1)),
        ("[2].x", (2, "x")),
    ],
)
def test_json_path_parses_and_round_trips(text: str, steps: tuple):
    assert parse_path(text) == steps
    assert parse_path(format_path(steps)) == steps


def test_json_path_selects_and_reports_bad_paths():
    value = {"a": [{"b": 1}, {"b": 2}], "a.b": True}
    assert select(value, parse_path("a[1].b")) == 2
    assert select(value, parse_path('["a.b"]')) is True
    assert select(value, parse_path("a[5]")) is MISSING
    assert select(value, parse_path("a.b")) is MISSING
    with pytest.raises(UsageError, match="column 3"):
        parse_path("$.[")
