"""A repair never deletes another builder's rebuild: a damaged cell is forgotten only while it
holds the generation the repairing builder read before it found the damage.

Builder A plans over a really damaged SQLite cell (a tampered shard, or a record that is
unreadable in full); builder B, a second session on the same cache, rebuilds that cell; then
A repairs (a build's repair step, or ``btbuild fsck --repair``). Before, A deleted B's fresh
result (lost work: the next build ran it again). Now B's record is kept, and the cache ends
equal to a clean build's with nothing left to run."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from btbuild.execution.build import BuildRequest, Scheduler
from btbuild.session import Session
from btbuild.storage import SqliteBackend
from tests.execution.conftest import Workspace, make_workspace
from tests.execution.test_self_repair import _sqlite_damage

END = "2024-01-02"
CELL = ("value", END)
TARGETS = ["value", "total", "sign", "price_level"]
DAYS = ["2024-01-01", END]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = make_workspace(tmp_path_factory.mktemp("built") / "ws", execution="retry_backoff = 0\n")
    ws.build(date=END)
    return ws.root


def _damaged_copy(built: Path, tmp_path: Path, damage: str) -> Workspace:
    shutil.copytree(built, tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    conn = sqlite3.connect(ws.root / ".btbuild" / "cache.db", isolation_level=None)
    _sqlite_damage(conn, damage, *CELL)
    conn.close()
    return ws


def _results(ws: Workspace) -> dict[tuple[str, str], Any]:
    with ws.backend() as backend:
        assert backend.check_results(TARGETS, DAYS, thorough=True) == {}
        return {(t, d): backend.read_expected(t, d) for t in TARGETS for d in DAYS}


def _rebuilt_by_b(ws: Workspace) -> str:
    """Builder B's build: it rebuilds the damaged cell. Returns B's generation."""
    cells = ws.cells(ws.build(date=END))
    assert cells[("//pricing:value", END)] == ("ran", "damaged"), cells
    with ws.backend() as backend:
        generation = backend.get_cell(*CELL).generation
    assert generation is not None
    return generation


@pytest.mark.parametrize("damage", ["tampered shard", "garbage record"])
def test_a_build_repair_keeps_a_rebuild_committed_after_its_plan(
    built: Path, tmp_path: Path, damage: str
) -> None:
    ws = _damaged_copy(built, tmp_path, damage)
    with Session(ws.root) as session:
        scheduler = Scheduler(session, BuildRequest(patterns=("//...",), end=date(2024, 1, 2)))
        scheduler.plan()
        assert CELL in scheduler.cache.damaged
        ours = _rebuilt_by_b(ws)
        lines = scheduler.repair()
        assert any("another builder rebuilt it: kept" in line for line in lines), lines
        with ws.backend() as backend:
            record = backend.get_cell(*CELL)
            assert record is not None and record.generation == ours  # B's work is kept
        scheduler.run()
    assert _results(ws) == _results(Workspace(built))
    assert ws.build(date=END)["summary"]["ran"] == 0


def test_fsck_repair_keeps_a_rebuild_committed_after_its_check(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _damaged_copy(built, tmp_path, "tampered shard")
    check = SqliteBackend.check_results
    rebuilt: list[str] = []

    def check_then_b_rebuilds(self: SqliteBackend, *args: Any, **kwargs: Any) -> Any:
        found = check(self, *args, **kwargs)
        if kwargs.get("thorough") and not rebuilt:  # fsck's check: B commits right after it
            assert CELL in found
            rebuilt.append(_rebuilt_by_b(ws))
        return found

    monkeypatch.setattr(SqliteBackend, "check_results", check_then_b_rebuilds)
    code, out, err = ws.cli("fsck", "--repair", "--date", END)
    assert code == 0, err
    assert "value 2024-01-02" in out, out
    with ws.backend() as backend:
        assert backend.get_cell(*CELL).generation == rebuilt[0]  # B's work is kept
    monkeypatch.undo()
    assert _results(ws) == _results(Workspace(built))
    assert ws.build(date=END)["summary"]["ran"] == 0
