"""StreamedResult: a per_user result read shard by shard behaves as the dict read_expected
returns, checks every shard, and records a failure the calculation might swallow."""

from __future__ import annotations

import copy
import pickle
import random
from pathlib import Path

import pytest

from btbuild.errors import DamagedResult, ResultMovedOn
from btbuild.storage import Backend, MemoryBackend, SqliteBackend
from btbuild.storage.canonical import canonical_bytes
from btbuild.storage.streamed import StreamedResult, plain

D1 = "2024-01-01"
T0 = 1_700_000_000.0


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    made: Backend = (
        MemoryBackend() if request.param == "memory" else SqliteBackend(tmp_path / "c.db")
    )
    made.shard_limit = 4096  # many small shards; long values span several
    return made


def value_of(seed: int = 1, users: int = 300) -> dict[str, object]:
    rng = random.Random(seed)
    value: dict[str, object] = {}
    for index in range(users):
        if index % 97 == 5:  # incompressible, longer than a shard: one line over 3+ shards
            value[f"u{index:05d}"] = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=12_000))
        elif index % 7 == 0:
            value[f"u{index:05d}"] = {"x": rng.random(), "tags": [index, None, True]}
        else:
            value[f"u{index:05d}"] = round(rng.uniform(-1e6, 1e6), 4)
    return value


def commit(backend: Backend, value: dict[str, object], flush_every: int = 40, now: float = T0):
    lease = backend.acquire("pnl", D1, "w1", 60, now=now)
    assert lease is not None
    writer = backend.open_writer(lease, "per_user")
    for index, (user, item) in enumerate(value.items()):
        writer.add_user(user, item)
        if index % flush_every == flush_every - 1:
            writer.flush()
    return writer.commit(now=now, composite_hash=f"c{now}")


def streamed(backend: Backend) -> StreamedResult:
    found = backend.read_streamed("pnl", D1)
    assert isinstance(found, StreamedResult)
    return found


def test_it_reads_as_the_dict_read_expected_returns(backend: Backend) -> None:
    value = value_of()
    record = commit(backend, value)
    assert record.shard_count > 10
    whole = backend.read_expected("pnl", D1, record.result_hash)
    lazy = backend.read_streamed("pnl", D1, record.result_hash)
    assert isinstance(lazy, StreamedResult) and not isinstance(lazy, dict)
    assert whole == value and lazy == whole and whole == lazy and bool(lazy)
    assert list(lazy) == list(whole) and list(lazy.keys()) == list(whole.keys())
    assert list(lazy.items()) == list(whole.items()) and list(lazy.values()) == list(whole.values())
    assert len(lazy) == len(whole) and len(lazy.values()) == len(whole)
    assert dict(lazy) == whole and {**lazy} == whole and lazy.copy() == whole
    assert repr(lazy) == repr(whole) and list(reversed(lazy)) == list(reversed(whole))
    assert copy.deepcopy(lazy) == whole and pickle.loads(pickle.dumps(lazy)) == whole
    assert ({"z": 1} | lazy) == ({"z": 1} | whole) and (lazy | {"z": 1}) == (whole | {"z": 1})
    for user in ["u00000", "u00005", "u00102", "u00299", "u00150", "u00001"]:  # any order
        assert user in lazy and lazy[user] == whole[user] and lazy.get(user) == whole[user]
    for absent in ["", "u", "u00300", "u000050", "v", 5, None, ("u00001",)]:
        assert absent not in lazy and lazy.get(absent, "d") == "d"  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        lazy["u99999"]
    with pytest.raises(TypeError):
        _ = ["u00001"] in lazy  # unhashable, as in a dict
    assert ("u00001", whole["u00001"]) in lazy.items() and whole["u00003"] in lazy.values()
    assert lazy.error is None


def test_canonical_bytes_of_what_a_calculation_returns_are_unchanged(backend: Backend) -> None:
    value = value_of(2)
    commit(backend, value)
    lazy = streamed(backend)
    returned = {"all": lazy, "nested": [lazy, {"again": lazy}], "n": len(lazy)}
    expected = {"all": value, "nested": [value, {"again": value}], "n": len(value)}
    assert canonical_bytes(plain(returned)) == canonical_bytes(expected)
    assert canonical_bytes(plain(lazy)) == canonical_bytes(value)
    untouched = {"a": [1, 2], "b": {"c": 3.5}}
    assert plain(untouched) is untouched and plain(3) == 3


def test_a_write_makes_it_a_dict_of_its_own(backend: Backend) -> None:
    value = value_of(3)
    commit(backend, value)
    lazy = streamed(backend)
    lazy["zz"] = 1
    del lazy["u00000"]
    assert lazy.pop("u00001") == value["u00001"] and lazy.setdefault("u00002", 0) == value["u00002"]
    expected = {k: v for k, v in value.items() if k not in ("u00000", "u00001")} | {"zz": 1}
    assert lazy == expected and len(lazy) == len(expected) and list(lazy) == list(expected)
    assert backend.read_expected("pnl", D1) == value  # the stored result is untouched
    lazy.clear()
    assert len(lazy) == 0 and not lazy


def test_damage_found_while_reading_is_raised_and_kept(backend: Backend) -> None:
    record = commit(backend, value_of(4))
    backend._write_shards("pnl", D1, record.generation or "", {7: b"\x78\x9cnot zlib"})
    lazy = streamed(backend)
    read = []
    try:  # a calculation that swallows the exception
        for user in lazy:
            read.append(user)
    except Exception:  # noqa: BLE001
        pass
    assert 0 < len(read) < len(lazy)
    assert isinstance(lazy.error, DamagedResult) and "shard 7" in str(lazy.error)
    assert lazy.error.target == "pnl" and lazy.error.date == D1


def test_a_lookup_checks_the_whole_result_first(backend: Backend) -> None:
    record = commit(backend, value_of(5))
    backend._write_shards("pnl", D1, record.generation or "", {record.shard_count - 1: b"x"})
    lazy = streamed(backend)
    with pytest.raises(DamagedResult):
        _ = "u00000" in lazy  # in the first shard, but the index pass reads every shard
    assert isinstance(lazy.error, DamagedResult)


def test_a_result_replaced_by_an_equal_one_is_followed(backend: Backend) -> None:
    value = value_of(6)
    commit(backend, value)
    lazy = streamed(backend)
    reading = iter(lazy.items())
    first = [next(reading) for _ in range(100)]
    commit(backend, value, flush_every=13, now=T0 + 100)  # same value, other shards
    assert first + list(reading) == list(value.items())
    assert lazy["u00201"] == value["u00201"] and lazy.error is None


def test_a_result_replaced_by_another_value_is_an_error(backend: Backend) -> None:
    value = value_of(7)
    commit(backend, value)
    lazy = streamed(backend)
    reading = iter(lazy.values())
    next(reading)
    commit(backend, value | {"u00001": "changed"}, now=T0 + 100)
    # not damage: the reader is given back and planned again, nothing is forgotten
    with pytest.raises(ResultMovedOn, match="another builder committed it since the plan"):
        list(reading)
    assert isinstance(lazy.error, ResultMovedOn)


def test_what_cannot_stream_is_read_whole(backend: Backend) -> None:
    assert backend.read_streamed("pnl", D1) is None
    record = commit(backend, {"u1": 1})
    with pytest.raises(DamagedResult, match="not the"):
        backend.read_streamed("pnl", D1, "other-hash")
    assert backend.read_streamed("pnl", D1, record.result_hash) == {"u1": 1}
