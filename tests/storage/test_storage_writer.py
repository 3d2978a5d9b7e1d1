"""ResultWriter: ascending user order, add_user/add_many, buffered feeding to the compressor."""

from __future__ import annotations

import pytest

from btbuild.errors import CalculationError, StorageError
from btbuild.storage import MemoryBackend, codec
from btbuild.storage.base import ResultWriter


def _writer(kind: str = "per_user") -> tuple[MemoryBackend, ResultWriter]:
    backend = MemoryBackend()
    lease = backend.acquire("risk", "2024-01-01", "w1", 60)
    assert lease is not None
    return backend, backend.open_writer(lease, kind)


def test_users_must_come_in_strictly_ascending_order() -> None:
    _, writer = _writer()
    writer.add_user("u02", 1)
    with pytest.raises(
        StorageError, match=r"'u01' was added twice or out of order .*\(the last one was 'u02'\)"
    ):
        writer.add_user("u01", 1)
    with pytest.raises(StorageError, match="twice"):
        writer.add_many([("u03", 1), ("u03", 2)])
    writer.add({"u04": 4})
    assert writer.item_count == 2 + 1  # u02, u03 (kept before the error), u04


def test_add_user_add_many_and_add_write_the_same_result() -> None:
    users = {
        f"u{i:05d}": {"risk": i / 7, "n": i, "tag": "x" * (i % 13), "neg": -0.0}
        for i in range(3000)
    }
    results = []
    for style in ("add", "add_many", "add_user"):
        backend, writer = _writer()
        if style == "add":
            writer.add(users)
        elif style == "add_many":
            writer.add_many(users.items())
        else:
            for user_id, value in users.items():
                writer.add_user(user_id, value)
                if user_id.endswith("777"):
                    writer.flush()
        record = writer.commit(composite_hash="c")
        assert backend.read_result("risk", "2024-01-01") == users
        results.append((record.result_hash, record.item_count))
    assert len(set(results)) == 1
    assert results[0] == (codec.result_hash("per_user", users), 3000)


def test_a_bad_value_keeps_the_users_before_it() -> None:
    backend, writer = _writer()
    with pytest.raises(CalculationError, match=r"\$\.u2\.x: nan"):
        writer.add_many([("u1", 1), ("u2", {"x": float("nan")}), ("u3", 3)])
    writer.add_user("u2", 2)  # the bad one was not recorded as the last user
    writer.commit()
    assert backend.read_result("risk", "2024-01-01") == {"u1": 1, "u2": 2}


def test_add_many_is_for_per_user_results() -> None:
    _, writer = _writer("per_date")
    with pytest.raises(StorageError, match="per_user"):
        writer.add_many([("u1", 1)])
    writer.add({"a": 1})
    writer.commit()
    with pytest.raises(StorageError, match="already committed"):
        writer.add_user("u1", 1)


def test_batched_scalars_write_the_bytes_of_one_line_per_user() -> None:
    """add_user encodes finite floats and ints in batches (codec.scalar_user_lines); mixed with
    values it encodes alone (dicts, NaN refused, -0.0, exponents, big ints, non-ASCII ids),
    the stored lines are exactly the careful encoder's, in user order."""
    odd = [-0.0, 1e-7, 2.5e16, 10**30, True, None, "s", {"k": [1.5]}, 3, 0.1 + 0.2]
    users = {f"u{i:05d}" + ("\u00e9" if i % 97 == 0 else ""): odd[i % 10] for i in range(5000)}
    users.update({f"v{i:05d}": i / 3 for i in range(4500)})  # more than a batch in a row
    backend, writer = _writer()
    for user_id, value in users.items():
        if user_id == "u00050":
            with pytest.raises(CalculationError, match=r"\$\.u00050: nan"):
                writer.add_user(user_id, float("nan"))  # refused at once, nothing kept
        writer.add_user(user_id, value)
        if user_id.endswith("999"):
            writer.flush()
        if user_id == "u04444":
            assert writer.item_count == 4445
    record = writer.commit(composite_hash="c")
    assert backend.read_result("risk", "2024-01-01") == users  # -0.0 == 0.0
    assert record.result_hash == codec.result_hash("per_user", users)
    stored = [line for _, _, line in backend.iter_result_lines("risk", "2024-01-01")]
    assert stored == [codec.careful_user_line(k, v) for k, v in users.items()]
    assert b'["u00010",0.0]' in stored and b'["u00001",1e-07]' in stored
