"""An in-memory backend: the test double every other backend is checked against.

It keeps records as plain dicts (what Firestore would store) so a round trip through
:meth:`CellRecord.to_dict` is exercised, and one lock makes every operation atomic.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from btbuild.errors import LeaseLost
from btbuild.storage import records as rec
from btbuild.storage.base import (
    Backend,
    _now,
    check_cell_key,
    check_deps,
    check_put_status,
    new_generation,
)
from btbuild.storage.records import CellRecord, Equivalence, Lease, RunRecord


class MemoryBackend(Backend):
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._cells: dict[tuple[str, str], dict[str, Any]] = {}
        self._shards: dict[tuple[str, str, str], dict[int, bytes]] = {}
        self._runs: list[dict[str, Any]] = []
        self._sim: dict[tuple[str, str], str] = {}
        self._ledger: list[Equivalence] = []

    # ------------------------------------------------------------------ records

    def _load(self, key: tuple[str, str]) -> CellRecord | None:
        data = self._cells.get(key)
        if data is None:
            return None
        try:
            return CellRecord.from_dict(data)
        except ValueError:
            return None  # corrupt record: a miss

    def _store_record(self, record: CellRecord | None, key: tuple[str, str]) -> None:
        if record is None:
            self._cells.pop(key, None)
        else:
            self._cells[key] = record.to_dict()

    def get_cells(
        self, targets: Iterable[str], dates: Iterable[str]
    ) -> dict[tuple[str, str], CellRecord]:
        wanted_dates = list(dict.fromkeys(dates))
        found: dict[tuple[str, str], CellRecord] = {}
        with self._lock:
            for target in dict.fromkeys(targets):
                for date in wanted_dates:
                    record = self._load((target, date))
                    if record is not None:
                        found[(target, date)] = record
        return found

    def put_cells(self, records: Iterable[CellRecord]) -> int:
        count = 0
        with self._lock:
            for record in records:
                check_cell_key(record.target, record.date)
                self._store_record(record, (record.target, record.date))
                count += 1
        return count

    def put_cell_status(
        self, target: str, date: str, status: str, *, now: float | None = None, **changes: Any
    ) -> CellRecord | None:
        when = _now(now)
        with self._lock:
            previous = self._load((target, date))
            checked = check_put_status(target, date, status, changes, previous)
            if previous is not None and previous.is_leased(when):
                return None
            record = rec.status_put(previous, target, date, status, checked, when)
            self._store_record(record, (target, date))
            return record

    # ------------------------------------------------------------------ leases

    def acquire(
        self,
        target: str,
        date: str,
        owner: str,
        lease_seconds: float,
        now: float | None = None,
        *,
        dead_owners: Collection[str] = (),
    ) -> Lease | None:
        check_cell_key(target, date)
        when = _now(now)
        with self._lock:
            taken = rec.leased(
                self._load((target, date)),
                target,
                date,
                owner,
                new_generation(),
                lease_seconds,
                when,
                dead_owners,
            )
            if taken is None:
                return None
            self._store_record(taken[0], (target, date))
            return taken[1]

    def renew(self, lease: Lease, now: float | None = None) -> Lease:
        with self._lock:
            current = self._load((lease.target, lease.date))
            if current is None or not rec.holds(current, lease):
                raise LeaseLost(
                    f"lease on {lease.target} for {lease.date} was taken over by another builder"
                )
            record, renewed = rec.renewed(current, lease, _now(now))
            self._store_record(record, (lease.target, lease.date))
            return renewed

    def release(self, lease: Lease, now: float | None = None) -> None:
        with self._lock:
            current = self._load((lease.target, lease.date))
            if current is not None and rec.holds(current, lease):
                self._store_record(
                    rec.released(current, lease, _now(now)), (lease.target, lease.date)
                )
            self._delete_generation(lease.target, lease.date, lease.generation)

    def _finish(
        self, lease: Lease, status: str, error: str | None, now: float
    ) -> CellRecord | None:
        with self._lock:
            self._delete_generation(lease.target, lease.date, lease.generation)
            current = self._load((lease.target, lease.date))
            if current is None or not rec.holds(current, lease):
                return None
            record = rec.finished(current, status, error, now)
            self._store_record(record, (lease.target, lease.date))
            return record

    def _commit(
        self,
        lease: Lease,
        result: Mapping[str, Any],
        now: float,
        expect_deps: Mapping[tuple[str, str], str] | None = None,
    ) -> CellRecord:
        key = (lease.target, lease.date)
        with self._lock:
            current = self._load(key)
            if current is None or not rec.holds(current, lease):
                raise LeaseLost(
                    f"lease on {lease.target} for {lease.date} was taken over by another builder; its result was not committed"
                )
            if expect_deps:
                found = {dep: self._load(dep) for dep in expect_deps}
                check_deps(lease, rec.moved_deps(expect_deps, found))
            record = rec.committed(current, lease, result, now)
            self._store_record(record, key)
            for shard_key in [k for k in self._shards if k[:2] == key and k[2] != lease.generation]:
                del self._shards[shard_key]
            return record

    # ------------------------------------------------------------------ shards

    def _write_shards(
        self, target: str, date: str, generation: str, shards: Mapping[int, bytes]
    ) -> None:
        with self._lock:
            self._shards.setdefault((target, date, generation), {}).update(shards)

    def _read_shards(
        self, target: str, date: str, generation: str, indices: range
    ) -> list[bytes | None]:
        with self._lock:
            stored = self._shards.get((target, date, generation), {})
            return [stored.get(index) for index in indices]

    def _delete_generation(self, target: str, date: str, generation: str) -> None:
        with self._lock:
            self._shards.pop((target, date, generation), None)

    def collect_garbage(self, now: float | None = None) -> int:
        with self._lock:
            deleted = 0
            for key in list(self._shards):
                record = self._load(key[:2])
                keep = record is not None and key[2] in (
                    record.generation,
                    record.lease_generation if record.status == rec.RUNNING else None,
                )
                if not keep:
                    deleted += len(self._shards.pop(key))
            return deleted

    def check_results(
        self, targets: Iterable[str], dates: Iterable[str], *, thorough: bool = False
    ) -> dict[tuple[str, str], str]:
        """The shared check, plus records too broken to have a summary at all."""
        wanted_targets, wanted_dates = list(dict.fromkeys(targets)), list(dict.fromkeys(dates))
        with self._lock:
            keys = [(t, d) for t in wanted_targets for d in wanted_dates]
            broken = {
                k: "its record is unreadable"
                for k in keys
                if k in self._cells and self._load(k) is None
            }
            return {
                **super().check_results(wanted_targets, wanted_dates, thorough=thorough),
                **broken,
            }

    def forget_result(
        self, target: str, date: str, *, generation: str | None = None, now: float | None = None
    ) -> bool:
        key = (target, date)
        with self._lock:
            current = self._load(key)
            if current is not None and (
                current.is_leased(_now(now))
                or (generation is not None and current.generation != generation)
            ):
                return False
            if key in self._cells:
                self._delete_cells([key])
            for shard_key in [k for k in self._shards if k[:2] == key]:
                del self._shards[shard_key]
            return True

    # ------------------------------------------------------------------ targets

    def _delete_cells(self, keys: list[tuple[str, str]]) -> int:
        for key in keys:
            del self._cells[key]
        dead = set(keys)
        for shard_key in [k for k in self._shards if k[:2] in dead]:
            del self._shards[shard_key]
        return len(keys)

    def delete_target(self, target: str) -> int:
        with self._lock:
            return self._delete_cells([key for key in self._cells if key[0] == target])

    def migrate_category(self, target: str, new_package: str) -> int:
        with self._lock:
            stale = [
                key
                for key, data in self._cells.items()
                if key[0] == target and data.get("category") not in (None, new_package)
            ]
            return self._delete_cells(stale)

    # ------------------------------------------------------------------ run log, SimHash

    def append_run(self, run: RunRecord) -> None:
        with self._lock:
            self._runs.append(run.to_dict())

    def runs(self, target: str | None = None, limit: int = 100) -> list[RunRecord]:
        with self._lock:
            chosen = []
            for data in self._runs:
                try:
                    run = RunRecord.from_dict(data)
                except ValueError:
                    continue
                if target is None or run.target == target:
                    chosen.append(run)
        chosen.sort(key=lambda run: run.started, reverse=True)
        return chosen[:limit]

    def get_sim_hash(self, code_hash: str, fabricator_version: str) -> str | None:
        with self._lock:
            return self._sim.get((code_hash, fabricator_version))

    def put_sim_hash(self, code_hash: str, fabricator_version: str, sim_hash: str) -> None:
        with self._lock:
            self._sim[(code_hash, fabricator_version)] = sim_hash

    def record_equivalence(
        self,
        target: str,
        old_code_hash: str,
        new_code_hash: str,
        sim_hash: str,
        date: str,
        now: float | None = None,
    ) -> Equivalence:
        entry = Equivalence(target, old_code_hash, new_code_hash, sim_hash, date, _now(now))
        with self._lock:
            self._ledger.append(entry)
        return entry

    def equivalences(self, target: str | None = None) -> list[Equivalence]:
        with self._lock:
            return [e for e in self._ledger if target is None or e.target == target]
