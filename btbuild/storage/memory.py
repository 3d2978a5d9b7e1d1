"""An in-memory backend: the test double every other backend is checked against.

It keeps records as plain dicts (what Firestore would store) so a round trip through
:meth:`CellRecord.to_dict` is exercised, and one lock makes every operation atomic.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar

from btbuild.storage.base import Backend, CellTransaction, check_cell_key
from btbuild.storage.outbox import PendingAlert
from btbuild.storage.records import CellRecord, Equivalence, RunRecord

T = TypeVar("T")


class MemoryBackend(Backend):
    supports_outbox = True

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._outbox: dict[str, str] = {}
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

    def _atomically(self, what: str, body: Callable[[CellTransaction], T]) -> T:
        with self._lock:
            return body(_MemoryTransaction(self))

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

    def _shard_generations(self, target: str, date: str) -> set[str]:
        with self._lock:
            return {key[2] for key in self._shards if key[:2] == (target, date)}

    def _delete_shards(self, target: str, date: str, generations: Collection[str]) -> int:
        with self._lock:
            return sum(
                len(self._shards.pop((target, date, generation), {})) for generation in generations
            )

    def _all_shard_generations(self) -> dict[tuple[str, str], set[str]]:
        with self._lock:
            found: dict[tuple[str, str], set[str]] = {}
            for target, date, generation in self._shards:
                found.setdefault((target, date), set()).add(generation)
            return found

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

    def _add_equivalence(self, entry: Equivalence) -> None:
        with self._lock:
            self._ledger.append(entry)

    def equivalences(self, target: str | None = None) -> list[Equivalence]:
        with self._lock:
            return [e for e in self._ledger if target is None or e.target == target]

    def pending_alerts(self) -> dict[str, PendingAlert | None]:
        with self._lock:
            return {key: PendingAlert.from_json(data) for key, data in self._outbox.items()}

    def _delete_alert(self, key: str) -> None:
        with self._lock:
            self._outbox.pop(key, None)


class _MemoryTransaction:
    """Reads and writes under the backend's lock (held by :meth:`MemoryBackend._atomically`)."""

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend

    def read(self, target: str, date: str) -> CellRecord | None:
        return self.backend._load((target, date))

    def save(self, record: CellRecord) -> None:
        self.backend._store_record(record, (record.target, record.date))

    def delete(self, target: str, date: str) -> None:
        self.backend._cells.pop((target, date), None)

    def put_alert(self, alert: PendingAlert) -> None:
        self.backend._outbox[alert.key] = alert.to_json()
