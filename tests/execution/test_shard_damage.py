"""A sharded per_user cell (``user_shards``) interrupted after its parts committed leaves them
in the cache, and the next build resumes from them (a part committed with the same inputs is
not computed again). The plan's integrity check never sees a part (it is no target), so a
part damaged meanwhile must be found where it is resumed: ONE build ends with the cell equal
to a clean build's, instead of failing on the damaged part (and rebuilding it only in the
build after)."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from btbuild.execution import runner
from btbuild.execution.build import BuildRequest, Scheduler
from btbuild.execution.environment import Environment
from btbuild.execution.setup import context_of
from btbuild.execution.tasks import GroupTask
from btbuild.session import Session
from tests.execution.conftest import Workspace, make_workspace
from tests.execution.test_self_repair import _sqlite_damage

DAY = date(2024, 1, 1)
PART = f"value~{DAY.isoformat()}~1of2"


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """A workspace whose sharded ``value`` cell has both parts committed and no combine yet
    (what a build killed before its combine leaves), and the value a clean build gives."""
    clean = make_workspace(tmp_path_factory.mktemp("clean") / "ws")
    clean.build("//pricing:value", date=DAY.isoformat())
    expected = clean.backend().read_result("value", DAY.isoformat())
    ws = make_workspace(
        tmp_path_factory.mktemp("parts") / "ws", execution="retry_backoff = 0\nuser_shards = 2\n"
    )
    with Session(ws.root) as session:
        request = BuildRequest(patterns=("//pricing:value",), end=DAY)
        scheduler = Scheduler(session, request).plan()
        _decision, task, _ = scheduler.planner.decide(scheduler.targets["//pricing:value"], DAY)
        env = Environment.of(context_of(session))
        for shard in (0, 1):
            group = GroupTask(DAY, 1, (task,), "r", shard=shard, shards=2)
            (part,) = runner.run_group(env, group)
            assert part.status == "ran", part
    return ws.root, expected


@pytest.mark.parametrize("damage", ["tampered shard", "deleted shard", "garbage summary"])
def test_one_build_recomputes_a_damaged_part_left_by_an_interrupted_build(
    interrupted: tuple[Path, dict[str, float]], tmp_path: Path, damage: str
) -> None:
    root = tmp_path / "ws"
    shutil.copytree(interrupted[0], root)
    conn = sqlite3.connect(root / ".btbuild" / "cache.db", isolation_level=None)
    _sqlite_damage(conn, damage, PART, DAY.isoformat())
    conn.close()
    ws = Workspace(root)
    report = ws.build("--jobs", "2", date=DAY.isoformat(), expect=None)
    cells = {c["label"]: (c["status"], c.get("detail", "")) for c in report["cells"]}
    assert all(status == "ran" for status, _ in cells.values()), cells
    backend = ws.backend()
    assert backend.read_result("value", DAY.isoformat()) == interrupted[1]
    assert backend.get_cell(PART, DAY.isoformat()) is None  # combined, then dropped
    assert backend.check_results(["value", "total", "sign"], [DAY.isoformat()]) == {}
    assert ws.build("--jobs", "2", date=DAY.isoformat())["summary"]["ran"] == 0
