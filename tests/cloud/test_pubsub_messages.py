"""Task messages are JSON that round-trips exactly; anything else is refused (no emulator)."""

from __future__ import annotations

from datetime import date

import pytest

from btbuild.execution.pubsub.resources import Names
from btbuild.execution.pubsub.wire import (
    decode_task,
    encode_task,
    outcome_from_json,
    outcome_to_json,
)
from btbuild.execution.tasks import CellOutcome, CellTask, GroupTask

CELL = CellTask(
    name="risk",
    day=date(2024, 1, 31),
    reason="deps_changed",
    build_pass=2,
    key="k",
    static="s",
    code_hash="c",
    components={"code": "1"},
    root_fingerprints={"prices": "f"},
    dep_results={"//p:returns": "r", "@previous": "q"},
    dep_dates={"returns": date(2024, 1, 30)},
    previous_date=date(2024, 1, 30),
    sim_hash=None,
)


def test_group_round_trips_through_json() -> None:
    group = GroupTask(date(2024, 1, 31), 2, (CELL,), "run1")
    data = encode_task(group)
    assert data.startswith(b"{") and b"pickle" not in data
    assert decode_task(data) == ("2024-01-31_p2", group)
    part = GroupTask(date(2024, 1, 31), 2, (CELL,), "run1", shard=1, shards=4)
    assert decode_task(encode_task(part)) == ("2024-01-31_p2_s2of4", part)
    combine = GroupTask(date(2024, 1, 31), 2, (CELL,), "run1", shards=4, combine=True)
    assert decode_task(encode_task(combine)) == ("2024-01-31_p2_combine4_risk", combine)
    outcome = CellOutcome(
        "risk", date(2024, 1, 31), "ran", "new", "h", 3, 0, 0.5, None, {"compute": 0.25}
    )
    assert outcome_from_json(outcome_to_json(outcome)) == outcome


@pytest.mark.parametrize(
    "data", [b"\x80\x04K\x01.", b"[]", b'{"version": 1}', b'{"version": 2, "run_id": "r"}']
)
def test_malformed_messages_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_task(data)


def test_names_derive_from_the_prefix() -> None:
    names = Names("p", "btbuild/demo")
    assert names.topic == "projects/p/topics/btbuild.demo.tasks"
    assert names.dead_subscription == "projects/p/subscriptions/btbuild.demo.dead.dispatch"
    assert Names("p", "7team").base == "btbuild.7team"
