"""A third-party storage backend in one module plus its registration: the whole cache in one
JSON file, every operation under an exclusive ``flock`` (safe between processes, slow).

It implements only the primitives of btbuild/storage/primitives.py; the commit protocol,
leases, integrity checks, repair and garbage collection are inherited from ``Backend``.
Used by tests/storage/test_storage_plugin.py and, through ``BACKEND_FACTORIES``, by the whole
storage contract suite.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from btbuild.storage.base import Backend, CellTransaction, check_cell_key
from btbuild.storage.records import CellRecord, Equivalence, RunRecord
from btbuild.storage.registry import BackendSpec, StorageTable

T = TypeVar("T")


def _key(target: str, date: str, generation: str | None = None) -> str:
    return "\0".join((target, date) if generation is None else (target, date, generation))


class JsonFileBackend(Backend):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _state(self, write: bool) -> Iterator[dict[str, Any]]:
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(self.path.read_text()) if self.path.exists() else {}
            except ValueError:
                state = {}
            for name in ("cells", "shards", "sims"):
                state.setdefault(name, {})
            for name in ("runs", "ledger"):
                state.setdefault(name, [])
            yield state
            if write:
                temporary = self.path.with_suffix(".tmp")
                temporary.write_text(json.dumps(state))
                os.replace(temporary, self.path)

    # ------------------------------------------------------------------ records

    def _atomically(self, what: str, body: Callable[[CellTransaction], T]) -> T:
        with self._state(write=True) as state:
            return body(_Transaction(state))

    def get_cells(
        self, targets: Iterable[str], dates: Iterable[str]
    ) -> dict[tuple[str, str], CellRecord]:
        date_list = list(dates)
        with self._state(write=False) as state:
            txn = _Transaction(state)
            found = {(t, d): txn.read(t, d) for t in targets for d in date_list}
        return {key: record for key, record in found.items() if record is not None}

    def put_cells(self, records: Iterable[CellRecord]) -> int:
        count = 0
        with self._state(write=True) as state:
            for record in records:
                check_cell_key(record.target, record.date)
                _Transaction(state).save(record)
                count += 1
        return count

    def check_results(
        self, targets: Iterable[str], dates: Iterable[str], *, thorough: bool = False
    ) -> dict[tuple[str, str], str]:
        """The shared check, plus records too broken to have a summary at all."""
        target_list, date_list = list(targets), list(dates)
        with self._state(write=False) as state:
            txn = _Transaction(state)
            broken = {
                (t, d): "its record is unreadable"
                for t in target_list
                for d in date_list
                if _key(t, d) in state["cells"] and txn.read(t, d) is None
            }
        return {**super().check_results(target_list, date_list, thorough=thorough), **broken}

    # ------------------------------------------------------------------ shards

    def _write_shards(
        self, target: str, date: str, generation: str, shards: Mapping[int, bytes]
    ) -> None:
        with self._state(write=True) as state:
            stored = state["shards"].setdefault(_key(target, date, generation), {})
            stored.update({str(i): base64.b64encode(data).decode() for i, data in shards.items()})

    def _read_shards(
        self, target: str, date: str, generation: str, indices: range
    ) -> list[bytes | None]:
        with self._state(write=False) as state:
            stored = state["shards"].get(_key(target, date, generation), {})
        return [base64.b64decode(stored[str(i)]) if str(i) in stored else None for i in indices]

    def _shard_generations(self, target: str, date: str) -> set[str]:
        return self._all_shard_generations().get((target, date), set())

    def _delete_shards(self, target: str, date: str, generations: Collection[str]) -> int:
        with self._state(write=True) as state:
            return sum(len(state["shards"].pop(_key(target, date, g), {})) for g in generations)

    def _all_shard_generations(self) -> dict[tuple[str, str], set[str]]:
        found: dict[tuple[str, str], set[str]] = {}
        with self._state(write=False) as state:
            for key in state["shards"]:
                target, date, generation = key.split("\0")
                found.setdefault((target, date), set()).add(generation)
        return found

    # ------------------------------------------------------------------ targets

    def _delete_cells(self, state: dict[str, Any], keep: Callable[[str, Any], bool]) -> int:
        doomed = [key for key, data in state["cells"].items() if not keep(key, data)]
        for key in doomed:
            del state["cells"][key]
            for shard_key in [k for k in state["shards"] if k.rsplit("\0", 1)[0] == key]:
                del state["shards"][shard_key]
        return len(doomed)

    def delete_target(self, target: str) -> int:
        with self._state(write=True) as state:
            count = self._delete_cells(state, lambda key, _: key.split("\0")[0] != target)
            for shard_key in [k for k in state["shards"] if k.split("\0")[0] == target]:
                del state["shards"][shard_key]
            return count

    def migrate_category(self, target: str, new_package: str) -> int:
        def keep(key: str, data: Any) -> bool:
            category = data.get("category") if isinstance(data, dict) else None
            return key.split("\0")[0] != target or category in (None, new_package)

        with self._state(write=True) as state:
            return self._delete_cells(state, keep)

    # ------------------------------------------------------------------ run log, registries

    def append_run(self, run: RunRecord) -> None:
        with self._state(write=True) as state:
            state["runs"].append(run.to_dict())

    def runs(self, target: str | None = None, limit: int = 100) -> list[RunRecord]:
        with self._state(write=False) as state:
            found = [RunRecord.from_dict(data) for data in state["runs"]]
        found = [run for run in found if target is None or run.target == target]
        return sorted(found, key=lambda run: run.started, reverse=True)[:limit]

    def get_sim_hash(self, code_hash: str, fabricator_version: str) -> str | None:
        with self._state(write=False) as state:
            value = state["sims"].get(_key(code_hash, fabricator_version))
        return value if isinstance(value, str) else None

    def put_sim_hash(self, code_hash: str, fabricator_version: str, sim_hash: str) -> None:
        with self._state(write=True) as state:
            state["sims"][_key(code_hash, fabricator_version)] = sim_hash

    def _add_equivalence(self, entry: Equivalence) -> None:
        with self._state(write=True) as state:
            state["ledger"].append(entry.to_dict())

    def equivalences(self, target: str | None = None) -> list[Equivalence]:
        with self._state(write=False) as state:
            entries = [Equivalence(**data) for data in state["ledger"]]
        return [entry for entry in entries if target is None or entry.target == target]


class _Transaction:
    def __init__(self, state: dict[str, Any]) -> None:
        self.cells: dict[str, Any] = state["cells"]

    def read(self, target: str, date: str) -> CellRecord | None:
        data = self.cells.get(_key(target, date))
        try:
            return None if data is None else CellRecord.from_dict(data)
        except ValueError:
            return None  # unreadable: a miss

    def save(self, record: CellRecord) -> None:
        self.cells[_key(record.target, record.date)] = record.to_dict()

    def delete(self, target: str, date: str) -> None:
        self.cells.pop(_key(target, date), None)


def _open(table: StorageTable) -> Backend:
    return JsonFileBackend(table.path("path", ".btbuild/cache.json"))


def btbuild_storage_backends() -> list[BackendSpec]:
    return [BackendSpec("jsonfile", ("path",), _open, "the whole cache in one JSON file")]
