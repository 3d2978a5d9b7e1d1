"""The parts of sharded cells (``[execution] user_shards``) are no targets, so the plan never
checks them: ``btbuild fsck`` checks them (and ``--repair`` forgets a damaged one), and
``btbuild gc`` drops the orphans: merged ones, those of another number of parts than the
setting says now, and those past ``ttl_days``. Before, fsck said "no damage found" over a damaged part, and parts left from an old
``user_shards`` (or merged by a build that ran the cell whole) stayed forever. gc keeps
every part a combine of the current setting can still need: the parts of an interrupted
build are resumed from."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.execution.conftest import Workspace
from tests.execution.test_self_repair import _sqlite_damage
from tests.execution.test_shard_damage import DAY, PART, interrupted  # noqa: F401 (a fixture)

ISO = DAY.isoformat()
OTHER = f"value~{ISO}~2of2"


def _copy(interrupted: tuple[Path, object], tmp_path: Path) -> Workspace:  # noqa: F811
    shutil.copytree(interrupted[0], tmp_path / "ws")
    return Workspace(tmp_path / "ws")


def _clean(ws: Workspace, expected: object) -> None:
    """The cell equals a clean build's, fsck finds nothing and a build runs nothing."""
    with ws.backend() as backend:
        assert backend.read_expected("value", ISO) == expected
        assert backend.part_cells(["value"]) == []
    assert ws.cli("fsck", "--date", ISO)[0] == 0
    assert ws.build(date=ISO)["summary"]["ran"] == 0


def test_fsck_finds_and_repairs_a_damaged_part(
    interrupted: tuple[Path, object],  # noqa: F811
    tmp_path: Path,
) -> None:
    ws = _copy(interrupted, tmp_path)
    conn = sqlite3.connect(ws.root / ".btbuild" / "cache.db", isolation_level=None)
    _sqlite_damage(conn, "tampered shard", PART, ISO)
    conn.close()
    code, out, err = ws.cli("fsck", "--date", ISO, "--format", "json")
    assert code == 1, out + err
    (found,) = json.loads(out)["damaged"]
    assert found["label"] == "//pricing:value part 1of2" and "checksum" in found["problem"]
    code, out, err = ws.cli("fsck", "--repair", "--date", ISO)
    assert code == 0 and "forgotten" in out, out + err
    with ws.backend() as backend:
        assert backend.get_cell(PART, ISO) is None
        assert backend.get_cell(OTHER, ISO) is not None  # the sound part is kept
    ws.build(date=ISO)  # without --jobs the cell runs whole: the sound part is left over
    with ws.backend() as backend:
        assert backend.part_cells(["value"]) == [(OTHER, ISO)]
    code, out, err = ws.cli("gc")  # merged: its cell holds a later result of its key
    assert code == 0 and "dropped 1 orphaned part(s)" in out, out + err
    _clean(ws, interrupted[1])


def test_gc_drops_the_parts_of_an_old_user_shards_and_keeps_resumable_ones(
    interrupted: tuple[Path, object],  # noqa: F811
    tmp_path: Path,
) -> None:
    ws = _copy(interrupted, tmp_path)
    code, out, err = ws.cli("gc", "--format", "json")  # both parts of the current setting
    assert code == 0 and json.loads(out)["orphan_parts"] == 0, out + err
    with ws.backend() as backend:
        assert backend.part_cells(["value"]) == [(PART, ISO), (OTHER, ISO)]
    ws.edit(
        "BUILD.toml", 'start_date = "2024-01-01"\n', 'start_date = "2024-01-01"\nttl_days = 30\n'
    )
    late = json.loads(ws.cli("gc", "--dry-run", "--as-of", "2024-03-01", "--format", "json")[1])
    assert late["orphan_parts"] == 2  # past ttl_days: a result of that date would go too
    ws.edit("BUILD.toml", "user_shards = 2", "user_shards = 3")
    assert json.loads(ws.cli("gc", "--dry-run", "--format", "json")[1])["orphan_parts"] == 2
    with ws.backend() as backend:
        assert len(backend.part_cells(["value"])) == 2
    code, out, err = ws.cli("gc")
    assert code == 0 and "dropped 2 orphaned part(s)" in out, out + err
    with ws.backend() as backend:
        assert backend.part_cells(["value"]) == []
    ws.build(date=ISO)
    _clean(ws, interrupted[1])
