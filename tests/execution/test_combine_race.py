"""A sharded per_user cell's combine races other builders: it must merge exactly the parts
it checked, never a part another builder (of other code) replaced in between, and must
never delete a part it did not merge (another builder's, for its own combine)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from btbuild.execution import runner
from btbuild.execution.build import BuildRequest, Scheduler
from btbuild.execution.environment import Environment
from btbuild.execution.setup import context_of
from btbuild.execution.tasks import GroupTask
from btbuild.session import Session
from tests.execution.conftest import Workspace

DAY = date(2024, 1, 1)
PART = f"value~{DAY.isoformat()}~1of2"


def _other_part(env: Any) -> None:
    """Another builder's result for the first part: other code, another key, other values."""
    lease = env.backend.acquire(PART, DAY.isoformat(), "other-builder", 60)
    writer = env.backend.open_writer(lease, "per_user")
    writer.add({"u001": -1.0})
    other = dict(lease.previous.components, code="other-code")
    writer.commit(composite_hash="other-key", components=other, category="pricing")


@pytest.mark.parametrize("when", ["before_the_read", "after_the_commit"])
def test_a_combine_merges_only_the_parts_it_checked(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    ws.build("//pricing:value", date=DAY.isoformat())  # unsharded: what the parts must give
    expected = ws.backend().read_result("value", DAY.isoformat())
    ws.backend().forget_result("value", DAY.isoformat())
    ws.edit("BUILD.toml", "max_attempts = 2\n", "max_attempts = 2\nuser_shards = 2\n")
    session = Session(ws.root)
    scheduler = Scheduler(session, BuildRequest(patterns=("//pricing:value",), end=DAY)).plan()
    _decision, task, _inputs = scheduler.planner.decide(scheduler.targets["//pricing:value"], DAY)
    env = Environment.of(context_of(session))
    for shard in (0, 1):
        (part,) = runner.run_group(env, GroupTask(DAY, 1, (task,), "r", shard=shard, shards=2))
        assert part.status == "ran", part
    take_lease, drop = runner.take_lease, runner._drop_parts

    def interfere_at_lease(env: Any, cell: Any, store: str) -> Any:
        lease = take_lease(env, cell, store)
        if when == "before_the_read":
            _other_part(env)
        return lease

    def interfere_at_drop(env: Any, *args: Any) -> None:
        if when == "after_the_commit":
            _other_part(env)  # another builder's part, committed for its own combine
        drop(env, *args)

    monkeypatch.setattr(runner, "take_lease", interfere_at_lease)
    monkeypatch.setattr(runner, "_drop_parts", interfere_at_drop)
    combine = GroupTask(DAY, 1, (task,), "r", shard=0, shards=2, combine=True)
    (outcome,) = runner.run_group(env, combine)
    monkeypatch.undo()
    session.close()
    backend = ws.backend()
    if when == "before_the_read":  # given back: planned again, nothing of the other part kept
        assert (outcome.status, outcome.reason) == ("blocked", "deps_moved"), outcome
        assert backend.get_cell("value", DAY.isoformat()) is None
    else:  # combined from its parts; the other builder's part is left for its combine
        assert outcome.status == "ran", outcome
        assert backend.read_result("value", DAY.isoformat()) == expected
        assert backend.get_cell(PART, DAY.isoformat()).composite_hash == "other-key"
    ws.build("//pricing:value", "--jobs", "2", date=DAY.isoformat())
    assert ws.backend().read_result("value", DAY.isoformat()) == expected
    assert ws.build("//pricing:value", "--jobs", "2", date=DAY.isoformat())["summary"]["ran"] == 0


def test_a_combine_whose_parts_another_builder_of_the_same_code_combined_is_skipped(
    ws: Workspace,
) -> None:
    """Two builders of the same code: both find the parts committed (one ran them, the other
    skipped them), the other's combine commits the cell and drops the parts before this one's
    combine looks at them. The cell holds exactly this build's key: skipped, not a failure
    ('part missing: run the build again', exit 1, as before); a part replaced by other code
    is given back (planned again)."""
    ws.edit("BUILD.toml", "max_attempts = 2\n", "max_attempts = 2\nuser_shards = 2\n")
    session = Session(ws.root)
    scheduler = Scheduler(session, BuildRequest(patterns=("//pricing:value",), end=DAY)).plan()
    _decision, task, _inputs = scheduler.planner.decide(scheduler.targets["//pricing:value"], DAY)
    env = Environment.of(context_of(session))
    combine = GroupTask(DAY, 1, (task,), "r", shard=0, shards=2, combine=True)
    for shard in (0, 1):
        runner.run_group(env, GroupTask(DAY, 1, (task,), "r", shard=shard, shards=2))
    (other,) = runner.run_group(env, combine)  # the other builder's combine, first
    assert other.status == "ran", other
    (mine,) = runner.run_group(env, combine)
    assert (mine.status, mine.reason) == ("skipped", "up_to_date"), mine
    assert mine.result_hash == other.result_hash
    env.backend.forget_result("value", DAY.isoformat())
    for shard in (0, 1):
        runner.run_group(env, GroupTask(DAY, 1, (task,), "r", shard=shard, shards=2))
    _other_part(env)  # other code's part, committed over this build's
    (mine,) = runner.run_group(env, combine)
    assert (mine.status, mine.reason) == ("blocked", "deps_moved"), mine
    session.close()
