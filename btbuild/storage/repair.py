"""Repair and retention on top of the backend primitives: the integrity check of committed
results, forgetting a damaged cell, expiring a result, collecting garbage shards."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from btbuild.errors import CacheFileDamaged
from btbuild.storage import integrity
from btbuild.storage.primitives import (
    BackendPrimitives,
    CellTransaction,
    _now,
    _referenced,
    summary_of,
)
from btbuild.storage.records import EXPIRED, CellRecord, Equivalence, RunRecord
from btbuild.vocabulary import CellSummary


class Repair(BackendPrimitives):
    """The shared repair, retention and log methods of every backend."""

    # ------------------------------------------------------------------ repair, retention

    def damage_found(self) -> CacheFileDamaged | None:
        """Damage of the cache's *file* this process met (or learnt of) since it opened it,
        or the file replaced under it: the build repairs it and runs again. Backends without
        files of their own never report any."""
        return None

    def check_file(self) -> CacheFileDamaged | None:
        """The backend's own check of its storage below the records (``btbuild fsck``)."""
        return None

    def forget_result(
        self, target: str, date: str, *, generation: str | None = None, now: float | None = None
    ) -> bool:
        """Treat a damaged cell as missing: delete its record and every shard of it, so the
        next decision rebuilds it. Does nothing (False) while a live lease holds the cell, or
        when ``generation`` is given and the readable record has moved on to another one (it
        was rebuilt meanwhile). A repair passes the generation the damaged cell held when it
        was read before the check (``""`` when it named none: then only a record that is
        still unreadable is deleted), so it never deletes another builder's rebuild; without
        ``generation`` any readable record not leased is deleted."""
        when = _now(now)

        def body(txn: CellTransaction) -> bool:
            current = txn.read(target, date)
            if current is not None and (
                current.is_leased(when)
                or (generation is not None and current.generation != generation)
            ):
                return False
            txn.delete(target, date)
            return True

        if not self._atomically(f"forget the damaged result of {target} on {date}", body):
            return False
        self._drop_unreferenced(target, date)
        return True

    def expire_result(
        self, target: str, date: str, generation: str, *, now: float | None = None
    ) -> bool:
        """Retention: keep the record (status ``expired``, no generation: dependents' hashes
        and explain still need its result hash and inputs) and delete its result's shards.
        Does nothing (False) while a live lease holds the cell or when its committed result
        is no longer ``generation``."""
        when = _now(now)

        def body(txn: CellTransaction) -> bool:
            current = txn.read(target, date)
            if current is None or current.generation != generation or current.is_leased(when):
                return False
            expired = replace(current, status=EXPIRED, generation=None, shard_count=0)
            txn.save(replace(expired, attempts=0, updated_at=when))
            return True

        if not self._atomically(f"expire the result of {target} on {date}", body):
            return False
        self._drop_unreferenced(target, date)
        return True

    def collect_garbage(self, now: float | None = None) -> int:
        """Delete shards of generations no record points at, neither as its committed result
        nor as its running attempt (leftovers of crashed attempts and deleted cells).
        Returns how many shards were deleted."""
        listed = self._all_shard_generations()
        by_target: dict[str, set[str]] = {}
        for target, date in listed:
            by_target.setdefault(target, set()).add(date)
        records: dict[tuple[str, str], CellRecord] = {}
        for target, dates in by_target.items():
            records.update(self.get_cells([target], sorted(dates)))
        deleted = 0
        for key, generations in listed.items():
            record = records.get(key)
            stale = generations - (_referenced(record) if record is not None else set())
            if stale:
                deleted += self._delete_shards(key[0], key[1], stale)
        return deleted

    def part_cells(self, targets: Iterable[str]) -> list[tuple[str, str]]:
        """(storage name, date) of every stored part of the given targets' sharded cells
        (``name~ISO~KofN``, btbuild/execution/tasks.py:part_name), sorted. Backends may
        override it with a query of their records; this one lists the parts holding shards."""
        wanted = tuple(f"{target}~" for target in targets)
        return sorted(key for key in self._all_shard_generations() if key[0].startswith(wanted))

    # ------------------------------------------------------------------ run log, ledger

    def find_runs(
        self,
        *,
        target: str | None = None,
        date: str | None = None,
        since: str | None = None,
        run_id: str | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """The newest runs first, filtered: of one target, of one cell date or of dates from
        ``since`` on, of one build (``run_id`` is the part before the ``/`` of a record's id).
        Backends may override it with a narrow query; this one filters :meth:`runs`."""
        scan = limit if date is None and since is None and run_id is None else 100_000
        found = []
        for run in self.runs(target, scan):
            if date is not None and run.date != date:
                continue
            if since is not None and run.date < since:
                continue
            if run_id is not None and run.run_id.split("/", 1)[0] != run_id:
                continue
            found.append(run)
            if len(found) >= limit:
                break
        return found

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
        self._add_equivalence(entry)
        return entry

    # ------------------------------------------------------------------ integrity

    def check_results(
        self, targets: Iterable[str], dates: Iterable[str], *, thorough: bool = False
    ) -> dict[tuple[str, str], str]:
        """The damaged cells of the cross product, keyed like :meth:`get_cells`, each with a
        one-line reason: a record claiming a committed result (its summary names a
        generation) that is unreadable in full, disagrees with its summary or its seal, or
        whose shards are missing or do not match their checksums. Backends may override it
        with a bulk query; this one reads each claimed cell's shards and every record in
        full (always ``thorough``: a backend's bulk query may skip costly record checks
        unless ``thorough`` is set, as ``btbuild fsck`` does)."""
        summaries = {
            key: summary
            for key, summary in self.get_cell_summaries(targets, dates).items()
            if summary[3] is not None
        }
        if not summaries:
            return {}
        records = self.get_cells(
            sorted({key[0] for key in summaries}), sorted({key[1] for key in summaries})
        )
        found = {}
        for key, summary in summaries.items():
            problem = self._cell_problem(summary, records.get(key))
            if problem is not None:
                found[key] = problem
        return self._confirmed(found)

    def read_checked(
        self, targets: Iterable[str], dates: Iterable[str]
    ) -> tuple[dict[tuple[str, str], CellSummary], dict[tuple[str, str], str]]:
        """What a build reads before deciding: :meth:`get_cell_summaries` and
        :meth:`check_results` of the same cells (a backend may read both at once)."""
        target_list, date_list = list(targets), list(dates)
        summaries = self.get_cell_summaries(target_list, date_list)
        return summaries, self.check_results(target_list, date_list)

    def start_read_checked(
        self, targets: Iterable[str], dates: Iterable[str]
    ) -> Callable[[], tuple[dict[tuple[str, str], CellSummary], dict[tuple[str, str], str]]]:
        """:meth:`read_checked`, begun now and finished by the returned call. A backend whose
        reads wait on a server sends them here, so the server works while the caller does
        something else (a build hashes its code meanwhile); this one reads when called. The
        result is what :meth:`read_checked` returns at some moment between the two calls."""
        target_list, date_list = list(targets), list(dates)
        return lambda: self.read_checked(target_list, date_list)

    def _confirmed(self, found: Mapping[tuple[str, str], str]) -> dict[tuple[str, str], str]:
        """The damage found that is still there when each cell is looked at again on its own
        (a commit may have moved the cell meanwhile)."""
        damaged: dict[tuple[str, str], str] = {}
        for key in found:
            fresh = self.get_cell_summaries([key[0]], [key[1]]).get(key)
            if fresh is not None and fresh[3] is not None:
                problem = self._cell_problem(fresh, self.get_cell(*key))
                if problem is not None:
                    damaged[key] = problem
        return damaged

    def _cell_problem(self, summary: CellSummary, record: CellRecord | None) -> str | None:
        if record is None:
            return "its record is unreadable"
        if tuple(summary) != tuple(summary_of(record)):
            return "its summary does not match its record"
        if not record.has_result:
            return None
        problem = integrity.record_problem(record)
        if problem is None:
            shards = self._read_shards(
                record.target, record.date, record.generation or "", range(record.shard_count)
            )
            problem = integrity.shards_problem(record, shards)
        return problem
