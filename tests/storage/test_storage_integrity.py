"""Damaged caches, on every backend: each kind of damage is found by ``check_results`` and by
every read, never read as "no result", and ``forget_result`` turns the cell into a miss."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable

import pytest

from btbuild.errors import DamagedResult
from btbuild.storage import Backend, FirestoreBackend, MemoryBackend, SqliteBackend
from btbuild.storage.records import CellRecord
from tests.storage.conftest import corrupt_firestore_record, edit_json_record
from tests.storage.test_storage_contract import D1, D2, T0, commit_per_user, corrupt_record
from tests.storage.toy_backend import JsonFileBackend

_RANDOM = random.Random(12)
VALUE = {f"u{i:03d}": {"risk": i / 7, "pad": _RANDOM.randbytes(24).hex()} for i in range(400)}


def _commit(backend: Backend, date: str = D1) -> CellRecord:
    backend.shard_limit = 4096  # several shards, so one can go missing on its own
    record = commit_per_user(backend, "risk", date, VALUE, composite_hash="k")
    assert record.shard_count >= 3
    return record


def _shard(backend: Backend, record: CellRecord, index: int) -> bytes:
    shard = backend._read_shards(
        "risk", record.date, record.generation or "", range(index, index + 1)
    )
    assert shard[0] is not None
    return shard[0]


def tamper(backend: Backend, record: CellRecord) -> None:
    """Same length, one byte flipped: only a content check can see it."""
    shard = bytearray(_shard(backend, record, 1))
    shard[len(shard) // 2] ^= 0x01
    backend._write_shards("risk", record.date, record.generation or "", {1: bytes(shard)})


def truncate(backend: Backend, record: CellRecord) -> None:
    shard = _shard(backend, record, 2)
    backend._write_shards(
        "risk", record.date, record.generation or "", {2: shard[: len(shard) // 2]}
    )


def delete_shard(backend: Backend, record: CellRecord) -> None:
    generation = record.generation or ""
    if isinstance(backend, MemoryBackend):
        del backend._shards[("risk", record.date, generation)][1]
    elif isinstance(backend, SqliteBackend):
        backend._conn.execute(
            "DELETE FROM shards WHERE target = 'risk' AND date = ? AND idx = 1", [record.date]
        )
    elif isinstance(backend, FirestoreBackend):
        backend.shards.document(f"risk__{record.date}__{generation}__1").delete()
    elif isinstance(backend, JsonFileBackend):
        with backend._state(write=True) as state:
            del state["shards"][f"risk\0{record.date}\0{generation}"]["1"]
    else:
        pytest.fail(f"delete_shard does not know {type(backend).__name__}")


def garbage_record(backend: Backend, record: CellRecord) -> None:
    if isinstance(backend, FirestoreBackend):
        corrupt_firestore_record(backend, "risk", record.date)
    elif isinstance(backend, JsonFileBackend):
        edit_json_record(backend, "risk", record.date, status=42)
    else:
        corrupt_record(backend, "risk", record.date)


def garbage_summary(backend: Backend, record: CellRecord) -> None:
    """The result hash the planner reads no longer fits the result."""
    wrong = "0" * 32
    if isinstance(backend, MemoryBackend):
        backend._cells[("risk", record.date)]["result_hash"] = wrong
    elif isinstance(backend, SqliteBackend):
        backend._conn.execute(
            "UPDATE cells SET result_hash = ? WHERE target = 'risk' AND date = ?",
            [wrong, record.date],
        )
    elif isinstance(backend, FirestoreBackend):
        # the packed summary is the only copy of record fields a Firestore reader trusts
        ref = backend.cells.document(f"risk__{record.date}")
        summary = json.loads(ref.get().get("summary"))
        summary[2] = wrong
        ref.update({"summary": json.dumps(summary)})
    elif isinstance(backend, JsonFileBackend):  # no separate summary: the record's field
        edit_json_record(backend, "risk", record.date, result_hash=wrong)
    else:
        pytest.fail(f"garbage_summary does not know {type(backend).__name__}")


DAMAGE: dict[str, tuple[Callable[[Backend, CellRecord], None], str]] = {
    "tampered shard": (tamper, "shard 1 of .* does not match its checksum"),
    "truncated shard": (truncate, "shard 2 of .* does not match its checksum"),
    "deleted shard": (delete_shard, "shard 1 of .* is missing"),
    "garbage record": (garbage_record, "record is unreadable"),
    "garbage summary": (garbage_summary, "summary does not match|does not match its seal"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damage_is_found_by_check_and_every_read(backend: Backend, damage: str) -> None:
    record = _commit(backend)
    healthy = _commit(backend, D2)
    assert backend.check_results(["risk"], [D1, D2]) == {}
    hurt, reason = DAMAGE[damage]
    hurt(backend, record)
    found = backend.check_results(["risk", "other"], [D1, D2])
    assert list(found) == [("risk", D1)], found
    assert re.search(reason, found[("risk", D1)]), found
    if damage == "garbage summary" and isinstance(backend, FirestoreBackend):
        # only the summary copy is garbled: the record itself (and its result) is intact,
        # so readers of the record read the right result; planners see the damage above
        assert backend.read_expected("risk", D1, record.result_hash) == VALUE
    else:
        assert backend.read_result("risk", D1) is None  # a miss for tolerant readers...
        with pytest.raises(DamagedResult):  # ...never None for a reader expecting a result
            backend.read_expected("risk", D1, record.result_hash)
        with pytest.raises(DamagedResult):
            list(backend.iter_result("risk", D1, record.result_hash))
    assert backend.read_expected("risk", D2, healthy.result_hash) == VALUE
    assert dict(backend.iter_result("risk", D2, healthy.result_hash)) == VALUE

    assert backend.forget_result("risk", D1) is True  # repair: the cell is now a miss
    assert backend.get_cell("risk", D1) is None
    assert backend._read_shards("risk", D1, record.generation or "", range(3)) == [None] * 3
    assert backend.check_results(["risk"], [D1, D2]) == {}
    rebuilt = _commit(backend)
    assert rebuilt.result_hash == record.result_hash
    assert backend.read_result("risk", D1) == VALUE


def test_an_expected_result_that_is_missing_or_moved_is_damaged(backend: Backend) -> None:
    with pytest.raises(DamagedResult, match="no readable committed result"):
        backend.read_expected("risk", D1, "f" * 32)
    assert backend.read_expected("risk", D1) is None  # no expectation: simply no result
    record = _commit(backend)
    with pytest.raises(DamagedResult, match="not the"):
        backend.read_expected("risk", D1, "f" * 32)
    assert backend.read_expected("risk", D1, record.result_hash) == VALUE


def test_forget_result_leaves_a_live_lease_and_a_rebuilt_cell_alone(backend: Backend) -> None:
    record = _commit(backend)
    assert backend.forget_result("risk", D1, generation="another") is False
    lease = backend.acquire("risk", D1, "someone", 900)
    assert lease is not None
    assert backend.forget_result("risk", D1) is False
    assert backend.get_cell("risk", D1) is not None
    backend.release(lease)
    assert backend.forget_result("risk", D1, generation=record.generation, now=T0) is True


@pytest.mark.parametrize("damage", ["garbage record", "tampered shard"])
@pytest.mark.parametrize("rebuilt", [False, True], ids=["alone", "rebuilt"])
def test_a_repair_forgets_exactly_the_damaged_generation(
    backend: Backend, damage: str, rebuilt: bool
) -> None:
    """A repair forgets the generation read before the check found the damage
    (``found_generation``: "" for a record naming none); a rebuild another builder committed
    since is kept, with its result."""
    from btbuild.execution.storage_cache import found_generation

    record = _commit(backend)
    DAMAGE[damage][0](backend, record)
    summaries, found = backend.read_checked(["risk"], [D1])
    assert ("risk", D1) in found
    at = found_generation(summaries.get(("risk", D1)))
    if rebuilt:
        again = _commit(backend)
        assert backend.forget_result("risk", D1, generation=at) is False
        assert backend.get_cell("risk", D1) == again
        assert backend.read_expected("risk", D1, again.result_hash) == VALUE
    else:
        assert backend.forget_result("risk", D1, generation=at) is True
        assert backend.get_cell("risk", D1) is None
        assert backend.check_results(["risk"], [D1]) == {}


def test_part_cells_lists_the_parts_of_sharded_cells(backend: Backend) -> None:
    """``part_cells``: the stored parts (``name~ISO~KofN``) of the given targets only, those
    of several shards and those of one (inline in a Firestore cell document: fsck and gc
    missed them there)."""
    backend.shard_limit = 4096
    part = f"risk~{D1}~1of2"
    commit_per_user(backend, part, D1, VALUE, composite_hash="k")
    commit_per_user(backend, "risk", D1, VALUE, composite_hash="k")
    commit_per_user(backend, "risky", D1, VALUE, composite_hash="k")
    assert backend.part_cells(["risk"]) == [(part, D1)]
    assert backend.part_cells(["ris", "risky", "other"]) == []
    small = f"risky~{D1}~2of2"  # a one-shard result (Firestore keeps it in the cell document)
    commit_per_user(backend, small, D1, {"u1": 1}, composite_hash="k")
    assert backend.part_cells(["risky", "risk"]) == sorted([(part, D1), (small, D1)])
