"""The backend contract: every test here runs against every backend in conftest.py."""

from __future__ import annotations

import random

import pytest

from btbuild.errors import CalculationError, DamagedResult, DepsMoved, LeaseLost, StorageError
from btbuild.storage import (
    Backend,
    CellRecord,
    MemoryBackend,
    RunRecord,
    SqliteBackend,
    result_hash,
)
from tests.storage.conftest import overwrite_shard

D1, D2, D3 = "2024-01-01", "2024-01-02", "2024-01-03"
T0 = 1_700_000_000.0


def commit_per_user(
    backend: Backend,
    target: str,
    date: str,
    value: dict,
    *,
    owner: str = "w1",
    now: float = T0,
    **inputs,
) -> CellRecord:
    lease = backend.acquire(target, date, owner, 60, now=now)
    assert lease is not None
    writer = backend.open_writer(lease, "per_user")
    writer.add(value)
    return writer.commit(now=now, **inputs)


def corrupt_record(backend: Backend, target: str, date: str) -> None:
    if isinstance(backend, MemoryBackend):
        backend._cells[(target, date)]["status"] = 42
    elif isinstance(backend, SqliteBackend):
        backend._conn.execute(
            "UPDATE cells SET data = '[\"half' WHERE target = ? AND date = ?", [target, date]
        )
    else:  # a new backend must say how to corrupt one of its records
        pytest.fail(f"corrupt_record does not know {type(backend).__name__}")


# ------------------------------------------------------------------ records and batched reads


def test_missing_cell_is_none(backend: Backend) -> None:
    assert backend.get_cell("risk", D1) is None
    assert backend.get_cells(["risk"], [D1, D2]) == {}
    assert backend.read_result("risk", D1) is None
    assert list(backend.iter_result("risk", D1)) == []


def test_commit_records_everything_and_reads_back(backend: Backend) -> None:
    value = {"u1": [1, "x", None, True], "u2": {"risk": 0.25}}  # users in ascending order
    record = commit_per_user(
        backend,
        "risk",
        D1,
        value,
        composite_hash="c1",
        components={"code": "k1", "deps": "d1"},
        code_hash="k1",
        sim_hash="s1",
        dep_results={"//p:returns": "r0"},
        root_fingerprints={"prices": "f1"},
        category="risk",
    )
    assert record.status == "committed" and record.kind == "per_user"
    assert record.result_hash == result_hash("per_user", value)
    assert record.item_count == 2 and record.shard_count == 1 and record.attempts == 1
    assert record.lease_owner is None and record.has_result
    stored = backend.get_cell("risk", D1)
    assert stored == record
    assert (
        stored is not None and stored.to_dict() == CellRecord.from_dict(record.to_dict()).to_dict()
    )
    assert backend.read_result("risk", D1) == value
    assert list(backend.iter_result("risk", D1)) == [
        ("u1", [1, "x", None, True]),
        ("u2", {"risk": 0.25}),
    ]


def test_iter_result_of_some_users_parses_only_them_and_still_checks_the_hash(
    backend: Backend,
) -> None:
    value = {f"u{n}": {"n": n} for n in range(10)}
    record = commit_per_user(backend, "risk", D1, value)
    from btbuild.storage.codec import user_shard

    part = list(backend.iter_result("risk", D1, part=(1, 3)))
    assert part == [(user, item) for user, item in value.items() if user_shard(user, 3) == 1]
    assert 0 < len(part) < len(value)
    from btbuild.storage.codec import encode_shards

    lines = b"".join(b'["u%d",{"n":%d}]\n' % (n, n + (n == 4)) for n in range(10))
    overwrite_shard(backend, "risk", D1, record.generation or "", 0, encode_shards(lines)[0])
    with pytest.raises(DamagedResult):  # damage in a user not asked for is still found
        list(backend.iter_result("risk", D1, part=(user_shard("u1", 7), 7)))


def test_per_date_result_round_trips(backend: Backend) -> None:
    lease = backend.acquire("market", D1, "w1", 60, now=T0)
    assert lease is not None
    writer = backend.open_writer(lease, "per_date")
    writer.add({"b": [1.5, -0.0], "a": None})
    with pytest.raises(StorageError, match="already added"):
        writer.add(1)
    record = writer.commit(now=T0, composite_hash="c")
    assert record.kind == "per_date" and record.item_count == 1
    assert record.result_hash == result_hash("per_date", {"a": None, "b": [1.5, 0.0]})
    assert backend.read_result("market", D1) == {"a": None, "b": [1.5, 0.0]}


def test_get_cells_is_the_cross_product(backend: Backend) -> None:
    targets = [f"t{i:03d}" for i in range(30)]
    dates = [f"2024-01-{day:02d}" for day in range(1, 21)]
    backend.put_cells(
        CellRecord(target=t, date=d, status="impossible", composite_hash=f"{t}{d}")
        for t in targets
        for d in dates
        if (int(t[1:]) + int(d[-2:])) % 3
    )
    found = backend.get_cells(targets[:20] + ["nobody"], dates[5:])
    expected = {(t, d) for t in targets[:20] for d in dates[5:] if (int(t[1:]) + int(d[-2:])) % 3}
    assert set(found) == expected
    assert all(found[key].composite_hash == key[0] + key[1] for key in expected)


def test_cell_summaries_match_the_records(backend: Backend) -> None:
    commit_per_user(backend, "a", "2024-01-01", {"u1": 1}, composite_hash="k1")
    commit_per_user(backend, "b", "2024-01-02", {"u1": 2}, composite_hash="k2", category="risk")
    backend.put_cell_status("c", "2024-01-01", "impossible")
    targets, dates = ["a", "b", "c", "zz"], ["2024-01-01", "2024-01-02"]
    records = backend.get_cells(targets, dates)
    summaries = backend.get_cell_summaries(targets, dates)
    assert (
        set(summaries)
        == set(records)
        == {("a", "2024-01-01"), ("b", "2024-01-02"), ("c", "2024-01-01")}
    )
    for key, record in records.items():
        assert summaries[key] == (
            record.status,
            record.composite_hash,
            record.result_hash,
            record.generation,
            record.category,
        )
    assert summaries["b", "2024-01-02"][1] == "k2" and summaries["b", "2024-01-02"][4] == "risk"


def test_a_live_lease_of_a_dead_owner_is_taken_over(backend: Backend) -> None:
    first = backend.acquire("a", "2024-01-01", "host:1", 900, now=T0)
    assert first is not None
    assert backend.acquire("a", "2024-01-01", "host:2", 900, now=T0 + 1) is None
    assert (
        backend.acquire("a", "2024-01-01", "host:2", 900, now=T0 + 1, dead_owners=("host:9",))
        is None
    )
    second = backend.acquire("a", "2024-01-01", "host:2", 900, now=T0 + 1, dead_owners=("host:1",))
    assert second is not None and second.generation != first.generation
    assert second.previous is not None and second.previous.lease_owner == "host:1"
    assert backend.get_cell("a", "2024-01-01").lease_owner == "host:2"


def test_bad_keys_are_refused(backend: Backend) -> None:
    with pytest.raises(StorageError, match="'2024/01/01'"):
        backend.acquire("risk", "2024/01/01", "w1", 60)
    with pytest.raises(StorageError, match="target"):
        backend.put_cell_status("", D1, "impossible")


# ------------------------------------------------------------------ leases


def test_a_live_lease_excludes_others_until_it_expires(backend: Backend) -> None:
    first = backend.acquire("risk", D1, "w1", 60, now=T0)
    assert first is not None and first.attempts == 1 and first.previous is None
    assert backend.acquire("risk", D1, "w2", 60, now=T0 + 59) is None
    assert backend.get_cell("risk", D1).status == "running"  # type: ignore[union-attr]
    zombie_taker = backend.acquire("risk", D1, "w2", 60, now=T0 + 61)
    assert zombie_taker is not None and zombie_taker.generation != first.generation
    assert zombie_taker.attempts == 2
    with pytest.raises(LeaseLost):
        backend.renew(first, now=T0 + 62)
    writer = backend.open_writer(first, "per_user")
    writer.add({"u1": 1})
    with pytest.raises(LeaseLost):
        writer.commit(now=T0 + 62)
    renewed = backend.renew(zombie_taker, now=T0 + 100)
    assert renewed.expires_at == T0 + 160
    assert backend.acquire("risk", D1, "w3", 60, now=T0 + 150) is None


def test_expired_but_untaken_lease_can_still_commit(backend: Backend) -> None:
    lease = backend.acquire("risk", D1, "w1", 1, now=T0)
    assert lease is not None
    writer = backend.open_writer(lease, "per_user")
    writer.add({"u1": 1})
    assert writer.commit(now=T0 + 100).status == "committed"


def test_release_restores_the_previous_state(backend: Backend) -> None:
    committed = commit_per_user(backend, "risk", D1, {"u1": 1}, composite_hash="c1")
    lease = backend.acquire("risk", D1, "w2", 60, now=T0 + 1)
    assert lease is not None and lease.previous == committed
    writer = backend.open_writer(lease, "per_user")
    writer.add({"u1": 2})
    writer.flush()
    backend.release(lease, now=T0 + 2)
    after = backend.get_cell("risk", D1)
    assert after is not None and after.status == "committed" and after.attempts == 1
    assert after.lease_owner is None and after.generation == committed.generation
    assert backend.read_result("risk", D1) == {"u1": 1}
    assert backend.collect_garbage() == 0  # release dropped the attempt's shards
    fresh = backend.acquire("other", D1, "w1", 60, now=T0)
    assert fresh is not None
    backend.release(fresh)
    assert backend.get_cell("other", D1) is None


def test_commit_compares_and_sets_the_dep_results(backend: Backend) -> None:
    """A commit names the dep results it was computed from; if a dep holds another result by
    now (another builder committed it), nothing is written and the cell is given back."""
    dep = commit_per_user(backend, "returns", D1, {"u1": 1}, composite_hash="r1")
    first = commit_per_user(
        backend,
        "risk",
        D1,
        {"u1": 10},
        composite_hash="c1",
        expect_deps={("returns", D1): dep.result_hash},
    )
    assert first.status == "committed"
    commit_per_user(backend, "returns", D1, {"u1": 2}, composite_hash="r2", now=T0 + 1)
    lease = backend.acquire("risk", D1, "w1", 60, now=T0 + 2)
    assert lease is not None
    writer = backend.open_writer(lease, "per_user")
    writer.add({"u1": 20})
    with pytest.raises(DepsMoved, match="returns on 2024-01-01 changed"):
        writer.commit(
            now=T0 + 3, composite_hash="c2", expect_deps={("returns", D1): dep.result_hash}
        )
    after = backend.get_cell("risk", D1)
    assert after is not None and after.status == "committed" and after.lease_owner is None
    assert after.generation == first.generation and after.attempts == first.attempts
    assert backend.read_result("risk", D1) == {"u1": 10}
    assert backend.collect_garbage() == 0  # the refused attempt's shards are gone
    with pytest.raises(DepsMoved, match="nothing on 2024-01-02"):  # a dep without a result
        commit_per_user(
            backend, "risk", D2, {"u1": 1}, composite_hash="c", expect_deps={("nothing", D2): "h"}
        )
    assert backend.get_cell("risk", D2) is None


def test_abort_keeps_the_old_result_and_counts_attempts(backend: Backend) -> None:
    commit_per_user(backend, "risk", D1, {"u1": 1}, composite_hash="c1")
    for attempt in (1, 2, 3):
        lease = backend.acquire("risk", D1, "w1", 60, now=T0 + attempt)
        assert lease is not None and lease.attempts == attempt
        writer = backend.open_writer(lease, "per_user")
        writer.add({"u1": 99, "u2": 98})
        writer.flush()
        status = "dead_letter" if lease.attempts >= 3 else "failed"
        record = writer.abort("ZeroDivisionError: boom", status=status, now=T0 + attempt)
        assert record is not None and record.status == status and record.attempts == attempt
        assert record.last_error == "ZeroDivisionError: boom"
    assert backend.read_result("risk", D1) == {"u1": 1}
    assert backend.collect_garbage() == 0


def test_writer_context_manager_aborts_on_exception(backend: Backend) -> None:
    lease = backend.acquire("risk", D1, "w1", 60, now=T0)
    assert lease is not None
    with pytest.raises(RuntimeError), backend.open_writer(lease, "per_user") as writer:
        writer.add({"u1": 1})
        raise RuntimeError("circuit breaker tripped")
    record = backend.get_cell("risk", D1)
    assert record is not None and record.status == "failed" and not record.has_result
    assert record.last_error == "RuntimeError: circuit breaker tripped"


def test_bad_values_name_the_path_and_leave_the_writer_usable(backend: Backend) -> None:
    lease = backend.acquire("risk", D1, "w1", 60, now=T0)
    assert lease is not None
    writer = backend.open_writer(lease, "per_user")
    writer.add({"u1": 1})
    with pytest.raises(CalculationError, match=r"\$\.u002\.risk: nan"):
        writer.add({"u002": {"risk": float("nan")}})
    with pytest.raises(StorageError, match="twice"):
        writer.add({"u1": 2})
    writer.add({"u3": 3})
    writer.commit(now=T0)
    assert backend.read_result("risk", D1) == {"u1": 1, "u3": 3}


def test_put_cell_status(backend: Backend) -> None:
    record = backend.put_cell_status("risk", D1, "impossible", last_error="no prices", now=T0)
    assert record is not None and record.status == "impossible" and not record.has_result
    with pytest.raises(StorageError, match="no result"):
        backend.put_cell_status("risk", D2, "committed", composite_hash="x")
    with pytest.raises(StorageError, match="unknown fields"):
        backend.put_cell_status("risk", D1, "failed", generation="forged")
    committed = commit_per_user(
        backend, "risk", D2, {"u1": 1}, composite_hash="old", code_hash="k1"
    )
    cosmetic = backend.put_cell_status(
        "risk", D2, "committed", composite_hash="new", code_hash="k2", now=T0 + 5
    )
    assert cosmetic is not None and cosmetic.composite_hash == "new"
    assert (
        cosmetic.result_hash == committed.result_hash
        and cosmetic.generation == committed.generation
    )
    assert backend.acquire("risk", D3, "w1", 60, now=T0) is not None
    assert backend.put_cell_status("risk", D3, "impossible", now=T0 + 1) is None


def test_put_cell_status_with_expect_is_a_compare_and_set(backend: Backend) -> None:
    """An adoption (expect = the generation and composite hash decided from) lands only on
    exactly that committed result: never on another builder's newer result, a cell that
    failed, expired or is leased since, nor on a missing one."""
    first = commit_per_user(backend, "risk", D1, {"u1": 1}, composite_hash="k0", code_hash="c0")
    seen = (first.generation, first.composite_hash)
    newer = commit_per_user(
        backend, "risk", D1, {"u1": 2}, composite_hash="k9", code_hash="c9", now=T0 + 1
    )
    assert (
        backend.put_cell_status("risk", D1, "committed", expect=seen, composite_hash="k1") is None
    )
    assert backend.get_cell("risk", D1) == newer  # untouched
    assert (
        backend.put_cell_status(
            "risk", D1, "committed", expect=(newer.generation, "k0"), composite_hash="k1"
        )
        is None
    )  # the same result under other inputs (another builder adopted first)
    adopted = backend.put_cell_status(
        "risk", D1, "committed", expect=(newer.generation, "k9"), composite_hash="k1", now=T0 + 2
    )
    assert adopted is not None and adopted.composite_hash == "k1"
    assert adopted.result_hash == newer.result_hash
    assert backend.put_cell_status("risk", D2, "committed", expect=seen, composite_hash="x") is None
    assert backend.expire_result("risk", D1, adopted.generation, now=T0 + 3)
    expired = (adopted.generation, "k1")  # gc took the result: no adoption, and no error
    assert (
        backend.put_cell_status("risk", D1, "committed", expect=expired, composite_hash="x") is None
    )
    again = commit_per_user(backend, "risk", D3, {"u1": 3}, composite_hash="k3", now=T0 + 4)
    assert backend.acquire("risk", D3, "w2", 60, now=T0 + 5) is not None
    assert (
        backend.put_cell_status(
            "risk", D3, "committed", expect=(again.generation, "k3"), composite_hash="x", now=T0 + 6
        )
        is None
    )  # leased by a live builder


# ------------------------------------------------------------------ shards, garbage, corruption


def test_large_results_span_shards_and_stay_under_the_limit(backend: Backend) -> None:
    big = "é" * 1_500_000  # 3 MB of UTF-8 that compresses well, plus incompressible text
    alphabet = [chr(0x4E00 + i) for i in range(20000)]
    noisy = "".join(random.Random(4).choices(alphabet, k=800_000))  # ~1.4 MB compressed
    lease = backend.acquire("risk", D1, "w1", 60, now=T0)
    assert lease is not None
    writer = backend.open_writer(lease, "per_user")
    writer.add({"u1": big, "u2": noisy})
    record = writer.commit(now=T0)
    assert record.shard_count >= 2
    shards = backend._read_shards("risk", D1, record.generation or "", range(record.shard_count))
    assert all(shard is not None and len(shard) <= backend.shard_limit for shard in shards)
    assert backend.read_result("risk", D1) == {"u1": big, "u2": noisy}


def test_commit_deletes_older_generations_and_gc_removes_orphans(backend: Backend) -> None:
    first = commit_per_user(backend, "risk", D1, {"u1": 1})
    crashed = backend.acquire("risk", D1, "w1", 60, now=T0 + 1)
    assert crashed is not None
    writer = backend.open_writer(crashed, "per_user")
    writer.add({"u1": 2})
    writer.flush()  # the process "dies" here: shards of an uncommitted generation remain
    assert backend.collect_garbage(now=T0 + 2) == 0  # its lease generation is still referenced
    second = commit_per_user(backend, "risk", D1, {"u1": 3}, now=T0 + 100)
    assert second.generation not in (first.generation, crashed.generation)
    assert backend._read_shards("risk", D1, first.generation or "", range(1)) == [None]
    assert backend._read_shards("risk", D1, crashed.generation, range(1)) == [None]
    backend._write_shards("risk", D1, "orphan", {0: b"x"})
    backend._write_shards("gone", D1, "orphan", {0: b"x", 1: b"y"})
    assert backend.collect_garbage() == 3
    assert backend.read_result("risk", D1) == {"u1": 3}


def test_corrupt_shard_is_a_miss(backend: Backend) -> None:
    record = commit_per_user(backend, "risk", D1, {"u1": 1, "u2": 2})
    overwrite_shard(backend, "risk", D1, record.generation or "", 0, b"\x78\x9cnot zlib at all")
    assert backend.read_result("risk", D1) is None
    assert not backend.has_result("risk", D1) or backend.read_result("risk", D1) is None
    with pytest.raises(DamagedResult, match="shard 0 of 1 does not match its checksum"):
        list(backend.iter_result("risk", D1))


def test_tampered_shard_fails_the_hash_check(backend: Backend) -> None:
    from btbuild.storage.codec import encode_shards

    record = commit_per_user(backend, "risk", D1, {"u1": 1, "u2": 2})
    tampered = encode_shards(b'["u1",1]\n["u2",3]\n')[0]
    overwrite_shard(backend, "risk", D1, record.generation or "", 0, tampered)
    assert backend.check_results(["risk"], [D1]) == {
        ("risk", D1): "shard 0 of 1 does not match its checksum"
    }
    assert backend.read_result("risk", D1) is None
    with pytest.raises(DamagedResult, match="does not match its checksum"):
        list(backend.iter_result("risk", D1))


def test_corrupt_record_is_a_miss(backend: Backend) -> None:
    commit_per_user(backend, "risk", D1, {"u1": 1})
    commit_per_user(backend, "risk", D2, {"u1": 2})
    corrupt_record(backend, "risk", D1)
    assert backend.get_cell("risk", D1) is None
    assert set(backend.get_cells(["risk"], [D1, D2])) == {("risk", D2)}
    assert backend.read_result("risk", D1) is None
    lease = backend.acquire("risk", D1, "w1", 60, now=T0)  # a miss can be rebuilt
    assert lease is not None
    writer = backend.open_writer(lease, "per_user")
    writer.add({"u1": 5})
    writer.commit(now=T0)
    assert backend.read_result("risk", D1) == {"u1": 5}


# ------------------------------------------------------------------ targets, logs, registries


def test_delete_target_and_migrate_category(backend: Backend) -> None:
    commit_per_user(backend, "risk", D1, {"u1": 1}, category="old")
    commit_per_user(backend, "risk", D2, {"u1": 1}, category="new")
    commit_per_user(backend, "other", D1, {"u1": 1}, category="old")
    assert backend.migrate_category("risk", "new") == 1
    assert set(backend.get_cells(["risk", "other"], [D1, D2])) == {("risk", D2), ("other", D1)}
    assert backend.collect_garbage() == 0  # the migration took the shards with it
    assert backend.delete_target("risk") == 1
    assert backend.read_result("risk", D2) is None
    assert backend.read_result("other", D1) == {"u1": 1}


def test_run_log(backend: Backend) -> None:
    for index in range(5):
        backend.append_run(
            RunRecord(
                run_id=f"r{index}",
                target="risk" if index % 2 else "other",
                date=D1,
                status="committed",
                build_pass=1,
                worker_id="w1",
                trigger="new",
                started=T0 + index,
                duration=0.5,
                phases={"load": 0.1, "compute": 0.4},
                error=None,
            )
        )
    assert [run.run_id for run in backend.runs()] == ["r4", "r3", "r2", "r1", "r0"]
    assert [run.run_id for run in backend.runs(target="risk")] == ["r3", "r1"]
    assert [run.run_id for run in backend.runs(limit=2)] == ["r4", "r3"]
    assert backend.runs(target="risk")[0].phases == {"load": 0.1, "compute": 0.4}


def test_sim_hash_registry_and_equivalence_ledger(backend: Backend) -> None:
    assert backend.get_sim_hash("k1", "fab1") is None
    backend.put_sim_hash("k1", "fab1", "s1")
    backend.put_sim_hash("k1", "fab2", "s2")
    assert backend.get_sim_hash("k1", "fab1") == "s1"
    assert backend.get_sim_hash("k1", "fab2") == "s2"
    backend.record_equivalence("risk", "k0", "k1", "s1", D1, now=T0)
    backend.record_equivalence("other", "k5", "k6", "s9", D2, now=T0 + 1)
    assert [e.new_code_hash for e in backend.equivalences()] == ["k1", "k6"]
    (entry,) = backend.equivalences("risk")
    assert (entry.old_code_hash, entry.sim_hash, entry.date, entry.recorded_at) == (
        "k0",
        "s1",
        D1,
        T0,
    )


# ------------------------------------------------------------------ alert outbox


def test_a_changing_commit_stores_its_alert_in_the_same_transaction(backend: Backend) -> None:
    """alert=True: a commit that changes the result hash leaves one pending alert (an outbox
    backend), deleted by _delete_alert; an unchanged result leaves none; a refused commit
    (lease lost) none either. A backend without an outbox commits the same and has none."""
    first = commit_per_user(backend, "a", D1, {"u1": 1}, alert=True)
    pending = backend.pending_alerts()
    if not backend.supports_outbox:
        assert pending == {} and backend.get_cell("a", D1).result_hash == first.result_hash
        return
    (key, alert), *others = pending.items()
    assert others == [] and alert is not None and key == alert.key
    assert (alert.target, alert.date, alert.generation) == ("a", D1, first.generation)
    assert (alert.result_hash, alert.previous_result_hash) == (first.result_hash, None)
    assert (alert.kind, alert.item_count) == ("per_user", 1)
    assert alert.alert_id == f"a/{D1}/{first.result_hash}/{first.generation}"
    backend._delete_alert(key)
    backend._delete_alert(key)  # a second delete (a duplicate publisher) is harmless
    assert backend.pending_alerts() == {}
    commit_per_user(backend, "a", D1, {"u1": 1}, alert=True, now=T0 + 1)
    assert backend.pending_alerts() == {}  # same result: nothing to announce
    second = commit_per_user(backend, "a", D1, {"u1": 2}, alert=True, now=T0 + 2)
    commit_per_user(backend, "b", D1, {"u1": 2}, now=T0 + 2)  # alert=False: none
    [alert] = backend.pending_alerts().values()
    assert alert is not None and alert.previous_result_hash == first.result_hash
    assert alert.result_hash == second.result_hash
    lease = backend.acquire("a", D2, "w1", 60, now=T0)
    assert lease is not None and backend.acquire("a", D2, "w2", 60, now=T0 + 61) is not None
    writer = backend.open_writer(lease, "per_user")
    writer.add({"u1": 3})
    with pytest.raises(LeaseLost):
        writer.commit(now=T0 + 62, alert=True)
    assert len(backend.pending_alerts()) == 1


@pytest.mark.parametrize("end", ["abort", "release"])
def test_an_abort_or_release_after_the_commit_keeps_the_committed_result(
    backend: Backend, end: str
) -> None:
    """An error after the commit (the run log cannot be written) ends the attempt again: the
    committed result must stay whole (its shards are the attempt's)."""
    lease = backend.acquire("risk", D1, "w1", 60, now=T0)
    assert lease is not None
    writer = backend.open_writer(lease, "per_user")
    writer.add({"u001": {"risk": 0.5}})
    writer.commit(now=T0, composite_hash="k")
    if end == "abort":
        assert writer.abort("logging the run failed", now=T0) is None  # the record moved on
    else:
        backend.release(lease, now=T0)
    assert backend.read_result("risk", D1) == {"u001": {"risk": 0.5}}
    assert backend.check_results(["risk"], [D1], thorough=True) == {}
