"""A damaged cell before a build's range (``--from``) that a cell of the range reads (a
historical target's previous day): the build recomputes it first, as it does an expired one
(``ran / damaged``), and exits 0 with a clean build's results. Before, the cell read as "not
built": every build from that range ended blocked (exit 1, 'waiting_for_previous_day', no
word of the damage) and nothing repaired it."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.execution.conftest import Workspace, make_workspace
from tests.execution.test_self_repair import _sqlite_damage

HIST = """\
[calculation.running]
entry = "h:running"
kind = "per_date"
deps = ["//pricing:total"]
historical = true
"""
CODE = """\
def running(ctx):
    return round((ctx.previous or 0) + ctx.dep("total")["total"], 6)
"""


def _workspace(root: Path) -> Workspace:
    ws = make_workspace(root, execution="retry_backoff = 0\n")
    ws.write("calculations/hist/BUILD.toml", HIST)
    ws.write("calculations/hist/h.py", CODE)
    return ws


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a clean build of four days, a build of the first three)."""
    clean = _workspace(tmp_path_factory.mktemp("clean") / "ws")
    clean.build(date="2024-01-04")
    three = _workspace(tmp_path_factory.mktemp("three") / "ws")
    three.build(date="2024-01-03")
    return clean.root, three.root


@pytest.mark.parametrize("damage", ["tampered shard", "garbage summary", "garbage record"])
def test_a_damaged_previous_day_before_the_range_is_recomputed(
    built: tuple[Path, Path], tmp_path: Path, damage: str
) -> None:
    clean = Workspace(built[0])
    shutil.copytree(built[1], tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    conn = sqlite3.connect(ws.root / ".btbuild" / "cache.db", isolation_level=None)
    _sqlite_damage(conn, damage, "running", "2024-01-02")
    conn.close()
    report = ws.build("--from", "2024-01-03", date="2024-01-04")
    cells = ws.cells(report)
    assert cells[("//hist:running", "2024-01-04")] == ("ran", "new"), cells
    days = [f"2024-01-0{day}" for day in range(1, 5)]
    with clean.backend() as expected, ws.backend() as backend:
        for day in days:
            record = backend.get_cell("running", day)
            if day == "2024-01-02" and record.status == "expired":  # no cell read it
                assert record.result_hash == expected.get_cell("running", day).result_hash
                continue
            assert backend.read_expected("running", day) == expected.read_result("running", day)
        assert backend.check_results(["running", "total", "value"], days) == {}
    assert ws.build("--from", "2024-01-03", date="2024-01-04")["summary"]["ran"] == 0
    if damage == "garbage summary":  # its dependents' keys no longer match: it was recomputed
        assert cells[("//hist:running", "2024-01-02")] == ("ran", "damaged"), cells
