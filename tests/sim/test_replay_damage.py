"""A damaged stored result met by the replay (a build's sim judge, proving a refactor cosmetic)
is no evidence either way: the replay passes over it, and the build forgets it, so that no
later verdict trips over it again. Before, the verdict was 'the simulation failed
(DamagedResult ...)' and the damaged cell stayed: the replay samples from [workspace]
start_date, cells a build with --from never checks, and picks the same cells every time, so
no refactor of the target could ever be proven cosmetic (every cell re-ran, exit 0)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.execution.conftest import make_workspace
from tests.execution.test_self_repair import _sqlite_damage


def test_a_damaged_cell_the_replay_samples_is_passed_over_and_forgotten(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", execution="retry_backoff = 0\n")
    ws.build(date="2024-01-03")
    conn = sqlite3.connect(ws.root / ".btbuild" / "cache.db", isolation_level=None)
    _sqlite_damage(conn, "tampered shard", "value", "2024-01-01")  # the oldest: sampled
    conn.close()
    ws.edit("calculations/pricing/calcs.py", "    return ", "    return 1 * ")  # a refactor
    report = ws.build("//pricing:value", "--from", "2024-01-02", date="2024-01-03")
    details = [cell.get("detail", "") for cell in report["cells"]]
    assert not any("Damaged" in detail or "failed" in detail for detail in details), details
    code, out, _err = ws.cli("fsck", "--date", "2024-01-03")
    assert code == 0, out  # the damaged cell was forgotten: it rebuilds as missing
    with ws.backend() as backend:
        assert backend.get_cell("value", "2024-01-01") is None
    assert ws.cells(ws.build(date="2024-01-03"))[("//pricing:value", "2024-01-01")] == (
        "ran",
        "new",
    )
