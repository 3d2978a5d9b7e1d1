"""The planner's view of the action cache, read from a storage backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from btbuild.storage.records import COMMITTED, EXPIRED, RUNNING, CellRecord, Lease
from btbuild.vocabulary import CellSummary
from btbuild.workspace.model import Target

# the result hash a damaged cell before the plan reads with when its record is unreadable
# in full (:meth:`StorageCache._expired`): never a real result's hash (those are hex)
UNREADABLE = "unreadable"

Checked = tuple[dict[tuple[str, str], CellSummary], dict[tuple[str, str], str]]


def found_generation(summary: CellSummary | None) -> str:
    """What ``Backend.forget_result`` compares a damaged cell with (``generation``): the
    generation it held when its summary was read before the check, so a result another
    builder committed since is never forgotten; "" when it named none (an unreadable record,
    forgotten only while it stays unreadable)."""
    return (summary.generation if summary is not None else None) or ""


class CacheReads:
    """What every :class:`StorageCache` of one build reads first (``Backend.read_checked``:
    the summaries and the integrity check of the plan's cells). The first read is begun when
    the build is set up, before its code is hashed (``Backend.start_read_checked``: Firestore
    sends its query then, so the server answers while this process hashes); every later one
    (a round that plans again) is read afresh. Either is the cache as it was at one moment
    before the planner decides, which is all a read made at any other moment gives: a commit
    made after it is found by the commit's compare-and-set, not by this read."""

    def __init__(
        self, backend: Any, names: list[str], dates: list[date], dry_run: bool = True
    ) -> None:
        self.backend = backend
        self.dry_run = dry_run
        self.names = sorted(names)
        self.isos = [day.isoformat() for day in dates]
        self._first: Callable[[], Checked] | None = backend.start_read_checked(
            self.names, self.isos
        )
        # a real build's left-over alerts (btbuild/execution/commits.py:flush_alerts)
        self.alerts = None if dry_run else backend.start_pending_alerts()

    def __call__(self) -> Checked:
        first, self._first = self._first, None
        if first is not None:
            return first()
        result: Checked = self.backend.read_checked(self.names, self.isos)
        return result


class StorageCache:
    """The planner's view of the action cache (:class:`~btbuild.analysis.planner.CacheView`):
    narrow summaries of every cell of the plan read up front, full records per target on first
    need. Reading changes nothing; :meth:`repair` is the build's explicit clean-up step.

    A target that moved to another package is a category migration: its cells of the old
    package are left out (``moved``) and it is built anew. Every other cell of the plan is
    checked for damage up front (``Backend.check_results``: the record's seal and every
    shard's checksum). A damaged cell is treated as missing: it is left out of the summaries
    and listed in ``damaged`` (the planner runs it, reason ``damaged``)."""

    def __init__(
        self,
        backend: Any,
        targets: Mapping[str, Target],
        dates: list[date],
        reads: CacheReads | None = None,
    ):
        self.backend = backend
        self.targets = targets
        self.dates = dates
        # summaries and the integrity check of the same cells (Firestore reads both at once)
        summaries, damaged = (reads or CacheReads(backend, list(targets), dates))()
        # name -> the package its stored cells were written under
        self.moved: dict[str, str] = {
            name: summary.category
            for (name, _day), summary in summaries.items()
            if summary.category is not None and summary.category != targets[name].package
        }
        self.damaged: dict[tuple[str, str], str] = {
            key: problem for key, problem in damaged.items() if key[0] not in self.moved
        }
        # the generation each damaged cell held when read (summaries are read no later than
        # the check): :meth:`repair` forgets exactly that one (see ``found_generation``)
        self._damaged_at = {key: found_generation(summaries.get(key)) for key in self.damaged}
        if self.moved or self.damaged:
            summaries = {
                key: summary
                for key, summary in summaries.items()
                if key[0] not in self.moved and key not in self.damaged
            }
        self.summaries: dict[tuple[str, str], CellSummary] = summaries
        self.records: dict[tuple[str, str], CellRecord | None] = {}
        self.writes = reads is not None and not reads.dry_run  # a real build's (see _expired)
        self._loaded: set[str] = set()
        self._repaired = False

    def repair(self) -> list[str]:
        """What a real build does before it runs anything (a dry run only reads): delete the
        cells a moved target left under its old package, and forget damaged results with
        their shards. One line per action, for the build's report."""
        if self._repaired:
            return []
        self._repaired = True
        done = []
        for name in sorted(self.moved):
            target = self.targets[name]
            deleted = self.backend.migrate_category(name, target.package)
            done.append(
                f"{target.label} moved from package {self.moved[name]!r}: "
                f"{deleted} cells of the old package deleted, it is built anew"
            )
        for (name, iso), why in sorted(self.damaged.items()):
            at = self._damaged_at.get((name, iso))
            if at is None:  # found before the plan's dates (:meth:`record`): expired there
                continue
            label = self.targets[name].label
            if self.backend.forget_result(name, iso, generation=at):
                done.append(f"{label} on {iso}: damaged result forgotten ({why}), rebuilt")
            else:  # another builder rebuilt it since the plan read it (or is rebuilding it)
                done.append(f"{label} on {iso}: damaged ({why}), another builder rebuilt it: kept")
        return done

    def full_record(self, name: str, day: date) -> CellRecord | None:
        key = (name, day.isoformat())
        if key not in self.summaries:
            return None
        if name not in self._loaded:
            self._loaded.add(name)
            self.records.update(self.backend.get_cells([name], [d.isoformat() for d in self.dates]))
        return self.records.get(key)

    def refresh(self, name: str, day: date) -> None:
        """Read one cell again (another builder may have changed it since the plan): its
        next decision sees the record as it is now."""
        iso = day.isoformat()
        record = self.backend.get_cell(name, iso)
        if record is None:
            self.summaries.pop((name, iso), None)
        else:
            self.summaries[(name, iso)] = CellSummary(
                record.status,
                record.composite_hash,
                record.result_hash,
                record.generation,
                record.category,
            )
        if record is not None or name in self._loaded:
            self.records[(name, iso)] = record

    def results_moved(
        self, decided: Mapping[tuple[str, date], str | None]
    ) -> list[tuple[str, date]]:
        """Of the cells a build decided with the result hash it read (name, day) -> hash,
        those that hold another result now (one query of their summaries)."""
        if not decided:
            return []
        names = sorted({name for name, _day in decided})
        fresh = self.backend.get_cell_summaries(names, sorted({d.isoformat() for _n, d in decided}))
        moved = []
        for (name, day), result_hash in decided.items():
            summary = fresh.get((name, day.isoformat()))
            if (summary.result_hash if summary is not None else None) != result_hash:
                moved.append((name, day))
        return moved

    def record(self, name: str, day: date) -> CellRecord | None:
        """Any cell's record; one before the plan's dates (``--from``) is checked for damage
        when first read: a damaged one reads as expired (:meth:`_expired`)."""
        if day >= self.dates[0]:
            return self.full_record(name, day)
        key = (name, day.isoformat())
        if key not in self.records:
            # read before the check: what a damaged cell is expired from (compare-and-set)
            record: CellRecord | None = self.backend.get_cell(*key)
            damaged = self.backend.check_results([name], [key[1]])
            if damaged:
                self.damaged.update(damaged)
                record = self._expired(name, key[1], record)
            self.records[key] = record
        return self.records.get(key)

    def _expired(self, name: str, iso: str, record: CellRecord | None) -> CellRecord:
        """A damaged cell before the plan (``record``: as read before the check found the
        damage): no build of this range decides it, so it is made what ``btbuild gc`` makes
        of a cell (status ``expired``: its record and result hash kept, no result), which a
        cell of the plan reading it has recomputed first (``ran / damaged``,
        btbuild/execution/retention.py) instead of being blocked by it in every build from
        this range. A real build stores that (``expire_result``, guarded by the generation: a
        cell rebuilt meanwhile stays); a dry run only sees it. A record unreadable in full
        has no result hash to keep: it reads as expired with :data:`UNREADABLE` (no reader's
        input key holds it, so a cell reading it runs, and recomputes it first) and is left
        as it is in the cache (the recomputation's commit replaces it; deleted, it would read
        as never built and block every build from this range)."""
        if record is None or record.generation is None or record.result_hash is None:
            return CellRecord(name, iso, EXPIRED, result_hash=UNREADABLE)
        if self.writes:
            self.backend.expire_result(name, iso, record.generation)
        return replace(record, status=EXPIRED, generation=None, shard_count=0)

    def end_dead_leases(self, skipped: list[tuple[str, date]], now: float) -> int:
        """End the attempts of dead builders on cells this build found up to date.

        A builder killed mid-attempt leaves its cell ``running`` over the committed result
        it was replacing. A cell that runs again is taken over by ``acquire``; one that is up
        to date is never acquired, so without this it would show ``running`` forever (and a
        ``--force`` from another host would wait out the lease). Only cells with a committed
        result are touched, only when the holder is dead on this host or its lease expired,
        and only through ``release`` (a compare-and-set on owner and attempt). Cells that
        will run are left alone: ``acquire`` counts their dead attempts (poison cells
        dead-letter). Returns how many leases were ended."""
        from btbuild.execution.liveness import is_dead_local_owner

        wanted = [
            (name, day.isoformat())
            for name, day in skipped
            if (summary := self.summaries.get((name, day.isoformat()))) is not None
            and summary.status == RUNNING
        ]
        if not wanted:
            return 0
        records = self.backend.get_cells(
            sorted({name for name, _ in wanted}), sorted({iso for _, iso in wanted})
        )
        ended = 0
        for key in wanted:
            record = records.get(key)
            if (
                record is None
                or record.status != RUNNING
                or record.generation is None
                or record.lease_owner is None
                or record.lease_generation is None
                or not (record.lease_expires <= now or is_dead_local_owner(record.lease_owner))
            ):
                continue
            before = replace(record, status=COMMITTED, attempts=max(0, record.attempts - 1))
            lease = Lease(
                record.target,
                record.date,
                record.lease_owner,
                record.lease_generation,
                record.lease_expires,
                record.started_at,
                0.0,
                record.attempts,
                previous=before,
            )
            self.backend.release(lease, now=now)
            ended += 1
        return ended
