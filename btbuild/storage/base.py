"""The storage backend interface, and the result writer/reader every backend shares.

A backend implements the abstract methods below: small, atomic operations on cell records,
shards, the run log, the SimHash registry and the equivalence ledger. Encoding, sharding,
hashing and the commit protocol live here, so every backend stores the same bytes and keeps
the same crash guarantees:

1. :meth:`Backend.acquire` atomically takes a cell and hands out a fresh *generation* (attempt
   id); the cell keeps pointing at its last committed generation.
2. :class:`ResultWriter` writes shards under the new generation; readers never look there.
3. :meth:`ResultWriter.commit` writes the cell record pointing at the new generation, after
   checking in the same transaction that the lease is still ours: this is the single step that
   makes the new result visible. Only then are older generations deleted.

A crash before step 3 leaves the old result visible and orphan shards that the next commit of
the cell (or :meth:`Backend.collect_garbage`) deletes. Readers follow the record only, and
retry when a commit deleted the generation they were reading.
"""

from __future__ import annotations

import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

from btbuild.errors import DamagedResult, DepsMoved, LeaseLost, StorageError
from btbuild.storage import codec, integrity
from btbuild.storage.records import (
    COMMITTED,
    DEAD_LETTER,
    FAILED,
    IMPOSSIBLE,
    INPUT_FIELDS,
    RUNNING,
    STATUSES,
    CellRecord,
    Equivalence,
    Lease,
    RunRecord,
)
from btbuild.vocabulary import CellSummary as CellSummary  # re-exported for the backends

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_READ_RETRIES = 5
# Buffered user lines are fed to the compressor once they reach this many bytes (or on flush).
_FEED_BYTES = 64 * 1024


def check_cell_key(target: str, date: str) -> None:
    """Refuse keys that cannot name a cell (every backend calls this on writes)."""
    if not isinstance(target, str) or not target or "/" in target:
        raise StorageError(
            f"cell target {target!r} is not a target name (expected e.g. 'portfolio_risk')"
        )
    if not isinstance(date, str) or not _DATE.match(date):
        raise StorageError(
            f"cell date {date!r} for target {target!r} is not an ISO date (expected YYYY-MM-DD)"
        )


"""(status, composite_hash, result_hash, generation, category) of one cell record."""


def new_generation() -> str:
    """A fresh attempt id, unique across processes and machines."""
    return uuid.uuid4().hex


class Backend(ABC):
    """Action cache, result shards, run log, SimHash registry and equivalence ledger.

    Times are epoch seconds; every method taking ``now`` uses ``time.time()`` when it is None
    (tests pass it to simulate expired leases). Unreadable records and shards are cache misses:
    they are skipped, never raised and never executed.
    """

    shard_limit: int = codec.SHARD_LIMIT

    # ------------------------------------------------------------------ cell records

    @abstractmethod
    def get_cells(
        self, targets: Iterable[str], dates: Iterable[str]
    ) -> dict[tuple[str, str], CellRecord]:
        """Every readable record for the cross product of ``targets`` and ``dates``, keyed
        ``(target, date)``, in a few round trips however many there are."""

    def get_cell(self, target: str, date: str) -> CellRecord | None:
        return self.get_cells([target], [date]).get((target, date))

    def get_cell_summaries(
        self, targets: Iterable[str], dates: Iterable[str]
    ) -> dict[tuple[str, str], CellSummary]:
        """What the planner needs of every cell to see that it is up to date, keyed like
        :meth:`get_cells`: ``(status, composite_hash, result_hash, generation, category)``.
        Backends override it with a narrow query; the full record is read only for cells
        whose inputs changed."""
        return {
            key: CellSummary(r.status, r.composite_hash, r.result_hash, r.generation, r.category)
            for key, r in self.get_cells(targets, dates).items()
        }

    @abstractmethod
    def put_cells(self, records: Iterable[CellRecord]) -> int:
        """Write records as they are, without any lease check (imports, tooling, benchmarks).
        Returns how many were written."""

    @abstractmethod
    def put_cell_status(
        self, target: str, date: str, status: str, *, now: float | None = None, **changes: Any
    ) -> CellRecord | None:
        """Record a cell state that has no new result: ``impossible``, ``failed``,
        ``dead_letter``, or ``committed`` to refresh the input hashes of an existing result
        (a cosmetic change). ``changes`` may set ``last_error``, ``attempts`` and the input
        fields (composite_hash, components, code_hash, sim_hash, dep_results,
        root_fingerprints, category). The committed result stays as it is. Returns None,
        changing nothing, while another builder holds a live lease on the cell."""

    # ------------------------------------------------------------------ leases

    @abstractmethod
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
        """Atomically take the cell for one attempt: succeeds when nobody holds a live lease
        (an expired one is a zombie and is taken over, and so is one held by ``dead_owners``,
        builders known to be gone). Sets status ``running``, counts the attempt and returns a
        lease with a fresh generation; None when the cell is taken."""

    @abstractmethod
    def renew(self, lease: Lease, now: float | None = None) -> Lease:
        """Extend the lease by its ``lease_seconds``; :class:`LeaseLost` if it was taken over."""

    @abstractmethod
    def release(self, lease: Lease, now: float | None = None) -> None:
        """Give the cell back unchanged (the work turned out not to be needed) and drop any
        shards written under the lease. Does nothing to a cell someone else took over."""

    @abstractmethod
    def _finish(
        self, lease: Lease, status: str, error: str | None, now: float
    ) -> CellRecord | None:
        """End the attempt without a result and drop its shards; None if the lease was lost."""

    @abstractmethod
    def _commit(
        self,
        lease: Lease,
        result: Mapping[str, Any],
        now: float,
        expect_deps: Mapping[tuple[str, str], str] | None = None,
    ) -> CellRecord:
        """Atomically check the lease and write the record pointing at ``lease.generation``
        (the visible commit), then delete every other generation of the cell.
        :class:`LeaseLost` (writing nothing) if the lease was taken over. ``expect_deps``:
        (target, date) -> result hash each dep cell must still hold, read in the same
        transaction; :class:`DepsMoved` (writing nothing) if one moved."""

    # ------------------------------------------------------------------ shards

    @abstractmethod
    def _write_shards(
        self, target: str, date: str, generation: str, shards: Mapping[int, bytes]
    ) -> None:
        """Store shards (index -> compressed bytes) under a generation nobody reads yet."""

    @abstractmethod
    def _read_shards(
        self, target: str, date: str, generation: str, indices: range
    ) -> list[bytes | None]:
        """The shards at ``indices`` of a generation; None for each one that is missing."""

    @abstractmethod
    def _delete_generation(self, target: str, date: str, generation: str) -> None:
        """Delete every shard of one generation."""

    @abstractmethod
    def collect_garbage(self, now: float | None = None) -> int:
        """Delete shards of generations no record points at, neither as its committed result
        nor as its running attempt (leftovers of crashed attempts and deleted cells).
        Returns how many shards were deleted."""

    # ------------------------------------------------------------------ targets

    @abstractmethod
    def delete_target(self, target: str) -> int:
        """Delete every cell (records and shards) of a target; returns how many cells."""

    @abstractmethod
    def migrate_category(self, target: str, new_package: str) -> int:
        """Delete the cells a target left under any package but ``new_package`` (it moved);
        returns how many cells. The run log and SimHash registry are kept."""

    # ------------------------------------------------------------------ run log, SimHash

    @abstractmethod
    def append_run(self, run: RunRecord) -> None: ...

    @abstractmethod
    def runs(self, target: str | None = None, limit: int = 100) -> list[RunRecord]:
        """The newest runs first (by start time), of one target or all."""

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

    @abstractmethod
    def get_sim_hash(self, code_hash: str, fabricator_version: str) -> str | None: ...

    @abstractmethod
    def put_sim_hash(self, code_hash: str, fabricator_version: str, sim_hash: str) -> None: ...

    @abstractmethod
    def record_equivalence(
        self,
        target: str,
        old_code_hash: str,
        new_code_hash: str,
        sim_hash: str,
        date: str,
        now: float | None = None,
    ) -> Equivalence: ...

    @abstractmethod
    def equivalences(self, target: str | None = None) -> list[Equivalence]:
        """The ledger, oldest first, of one target or all."""

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:  # noqa: B027 - backends without resources need not override
        """Release connections and files; the backend is unusable afterwards."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ results (shared)

    def open_writer(self, lease: Lease, kind: str) -> ResultWriter:
        """A writer for the result of the attempt ``lease`` stands for."""
        return ResultWriter(self, lease, kind)

    def read_result(self, target: str, date: str) -> Any:
        """The committed result (a dict user id -> value for per_user), or None when there is
        none or it cannot be read (a miss). Use :meth:`has_result` to tell a stored ``null``,
        and :meth:`read_expected` where a missing or damaged result must not read as None."""
        try:
            return self.read_expected(target, date)
        except DamagedResult:
            return None

    def read_expected(self, target: str, date: str, result_hash: str | None = None) -> Any:
        """The committed result, checked against the record (its seal, every shard's
        checksum, the result hash) and, when ``result_hash`` is given, against that hash (the
        one a dependent was planned with). :class:`DamagedResult` when there is no such
        result or it does not match: never None in place of a result."""
        problem: str | None = "it has no committed result"
        for _ in range(_READ_RETRIES):
            record = self.get_cell(target, date)
            if record is None or not record.has_result:
                if result_hash is None:
                    return None
                problem = "it has no readable committed result"
                break
            if result_hash is not None and record.result_hash != result_hash:
                problem = f"its result is {record.result_hash}, not the {result_hash} planned"
                break
            shards = self._read_shards(
                target, date, record.generation or "", range(record.shard_count)
            )
            problem = integrity.record_problem(record) or integrity.shards_problem(record, shards)
            if problem is None:
                try:
                    return integrity.hydrate_verified(record, [s for s in shards if s is not None])
                except ValueError as exc:
                    problem = f"its shards do not hold its result ({exc})"
            if not self._moved_on(record):
                break
        raise DamagedResult(
            f"{target} on {date} cannot be read: {problem}", target=target, date=date
        )

    def has_result(self, target: str, date: str) -> bool:
        """True if the cell has a committed result whose shards are all present."""
        record = self.get_cell(target, date)
        if record is None or not record.has_result:
            return False
        shards = self._read_shards(target, date, record.generation or "", range(record.shard_count))
        return all(shard is not None for shard in shards)

    def iter_result(
        self, target: str, date: str, result_hash: str | None = None
    ) -> Iterator[tuple[str, Any]]:
        """Stream a per_user result as (user id, value) in the order it was written, one shard
        in memory at a time. Yields nothing when there is no readable result (unless
        ``result_hash``, the hash the caller expects, is given: then that is a
        :class:`DamagedResult`). Each shard is checked against its checksum before any of its
        users is yielded; a result that turns out corrupt, or is replaced and deleted
        mid-stream, raises :class:`StorageError` (:class:`DamagedResult` for damage) after the
        items already yielded (the result hash is checked at the end)."""
        for user_id, value, _line in self.iter_result_lines(target, date, result_hash):
            yield user_id, value

    def iter_result_lines(
        self, target: str, date: str, result_hash: str | None = None
    ) -> Iterator[tuple[str, Any, bytes]]:
        """:meth:`iter_result` with each user's canonical line: (user id, value, line)."""
        record = self.get_cell(target, date)
        if record is None or not record.has_result or record.kind != "per_user":
            if result_hash is not None:
                raise DamagedResult(
                    f"{target} on {date} cannot be read: it has no readable per_user result",
                    target=target,
                    date=date,
                )
            return
        if result_hash is not None and record.result_hash != result_hash:
            raise DamagedResult(
                f"{target} on {date} cannot be read: its result is {record.result_hash}, "
                f"not the {result_hash} planned",
                target=target,
                date=date,
            )
        problem = integrity.record_problem(record)
        if problem is not None:
            raise DamagedResult(
                f"{target} on {date} cannot be read: {problem}", target=target, date=date
            )
        generation = record.generation or ""
        digests = integrity.digests_of(record)

        def shards() -> Iterator[bytes]:
            for index in range(record.shard_count):
                shard = self._read_shards(target, date, generation, range(index, index + 1))[0]
                if shard is None:
                    if self._moved_on(record):
                        raise StorageError(
                            f"result of {target} on {date} changed or vanished while it was being read; read it again"
                        )
                    raise DamagedResult(
                        f"{target} on {date} cannot be read: shard {index} of {record.shard_count} is missing",
                        target=target,
                        date=date,
                    )
                if digests is not None and integrity.shard_digest(shard) != digests[index]:
                    raise DamagedResult(
                        f"{target} on {date} cannot be read: shard {index} of {record.shard_count} does not match its checksum",
                        target=target,
                        date=date,
                    )
                yield shard

        hasher = codec.PerUserHash()
        add_line = hasher.add_line
        try:
            for lines in codec.iter_user_line_batches(shards()):
                pairs = codec.parse_user_lines(lines)
                for line, (user_id, value) in zip(lines, pairs, strict=True):
                    add_line(line)
                    yield user_id, value, line
        except ValueError as exc:
            raise DamagedResult(
                f"result of {target} on {date} is corrupt: {exc}", target=target, date=date
            ) from None
        if hasher.count != record.item_count or hasher.hexdigest() != record.result_hash:
            raise DamagedResult(
                f"result of {target} on {date} is corrupt: its hash does not match the record",
                target=target,
                date=date,
            )

    def _moved_on(self, record: CellRecord) -> bool:
        current = self.get_cell(record.target, record.date)
        return current is not None and current.generation != record.generation

    # ------------------------------------------------------------------ integrity (shared)

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
            if summary.generation is not None
        }
        if not summaries:
            return {}
        records = self.get_cells(
            sorted({key[0] for key in summaries}), sorted({key[1] for key in summaries})
        )
        damaged: dict[tuple[str, str], str] = {}
        for key, summary in summaries.items():
            problem = self._cell_problem(summary, records.get(key))
            if problem is not None:  # look again: a commit may have moved the cell meanwhile
                fresh = self.get_cell_summaries([key[0]], [key[1]]).get(key)
                if fresh is not None and fresh.generation is not None:
                    problem = self._cell_problem(fresh, self.get_cell(*key))
                    if problem is not None:
                        damaged[key] = problem
        return damaged

    def _cell_problem(self, summary: CellSummary, record: CellRecord | None) -> str | None:
        if record is None:
            return "its record is unreadable"
        if summary != (
            record.status,
            record.composite_hash,
            record.result_hash,
            record.generation,
            record.category,
        ):
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

    @abstractmethod
    def forget_result(
        self, target: str, date: str, *, generation: str | None = None, now: float | None = None
    ) -> bool:
        """Treat a damaged cell as missing: delete its record and every shard of it, so the
        next decision rebuilds it. Does nothing (False) while a live lease holds the cell, or
        when ``generation`` is given and the readable record has moved on to another one (it
        was rebuilt meanwhile)."""


def _hydrate_verified(record: CellRecord, shards: list[bytes]) -> Any:
    """Hydrate shards and check them against the record; ValueError when they disagree."""
    if record.kind == "per_date":
        data = b"".join(codec.inflate_shard(shard) for shard in shards)
        if codec.per_date_hash(data) != record.result_hash:
            raise ValueError("hash mismatch")
        return codec.loads(data)
    hasher = codec.PerUserHash()
    result: dict[str, Any] = {}
    for lines in codec.iter_user_line_batches(shards):
        for line in lines:
            hasher.add_line(line)
        result.update(codec.parse_user_lines(lines))
    if hasher.count != record.item_count or hasher.hexdigest() != record.result_hash:
        raise ValueError("hash mismatch")
    return result


class ResultWriter:
    """Writes one attempt's result incrementally; nothing is visible before :meth:`commit`.

    per_user: call :meth:`add` with a mapping or an iterable of (user id, value), as often as
    needed; per_date: call it once with the value. Full shards are stored as they fill up;
    :meth:`flush` also stores the partial one (call it to bound memory). Used as a context
    manager, an exception inside the block aborts the attempt as ``failed``.
    """

    def __init__(self, backend: Backend, lease: Lease, kind: str) -> None:
        if kind not in ("per_user", "per_date"):
            raise StorageError(
                f"result kind {kind!r} for {lease.target} is unknown (expected 'per_user' or 'per_date')"
            )
        self.backend = backend
        self.lease = lease
        self.kind = kind
        self._shards = codec.ShardBuilder(backend.shard_limit)
        self._next_index = 0
        self._digests: list[str] = []  # of every shard stored, in index order
        self._user_hash = codec.PerUserHash()
        self._date_hash: str | None = None
        self._last_user: str | None = None  # users must come in strictly ascending order
        self._lines: list[bytes] = []  # user lines not yet fed to the compressor
        self._buffered = 0
        self._closed = False

    @property
    def item_count(self) -> int:
        return (
            self._user_hash.count if self.kind == "per_user" else int(self._date_hash is not None)
        )

    def add(self, items: Any) -> None:
        """Append users (per_user) or set the value (per_date). A value that is not JSON
        raises :class:`CalculationError` naming the user and the path inside the value; users
        added before it (in the same call) are kept, the bad one is not.

        per_user: users must come in **strictly ascending** user id order (Python string
        order, across calls), the order the executor streams them in and readers and mergers
        rely on; a repeated or earlier id raises :class:`StorageError`. The check costs O(1)
        memory however many users there are."""
        self._check_open()
        if self.kind == "per_date":
            if self._date_hash is not None:
                raise StorageError(
                    f"per_date result of {self.lease.target} on {self.lease.date} was already added"
                )
            data = codec.canonical_bytes(items)
            self._date_hash = codec.per_date_hash(data)
            self._shards.write(data)
            self._store(self._shards.take())
        else:
            self.add_many(items.items() if isinstance(items, Mapping) else items)

    def add_user(self, user_id: str, value: Any) -> None:
        """Append one user of a per_user result: :meth:`add` without building a mapping."""
        self.add_many(((user_id, value),))

    def add_many(self, pairs: Iterable[tuple[str, Any]]) -> None:
        """Append (user id, value) pairs of a per_user result, in ascending user id order."""
        self._append(pairs, encoded=False)

    def add_lines(self, lines: Iterable[tuple[str, bytes]]) -> None:
        """Append (user id, canonical line) pairs exactly as :meth:`Backend.iter_result_lines`
        gives them (combining parts of a result without encoding it again)."""
        self._append(lines, encoded=True)

    def _append(self, pairs: Iterable[tuple[str, Any]], *, encoded: bool) -> None:
        if self._closed or self.kind != "per_user":
            self._check_open()
            raise StorageError(
                f"add_many is for per_user results; {self.lease.target} is per_date (use add)"
            )
        user_line = codec.user_line
        line_hash = codec._line_hash
        domain = codec._USER_DOMAIN
        lines = self._lines
        last = self._last_user
        total = 0
        count = 0
        buffered = self._buffered
        try:
            for user_id, value in pairs:
                line = value if encoded else user_line(user_id, value)
                if last is not None and user_id <= last:
                    raise StorageError(
                        f"user {user_id!r} was added twice or out of order to {self.lease.target} on "
                        f"{self.lease.date}: add users in strictly ascending order (the last one was {last!r})"
                    )
                last = user_id
                total += line_hash(domain + line)
                count += 1
                lines.append(line)
                buffered += len(line) + 1
                if buffered >= _FEED_BYTES:
                    self._buffered = buffered
                    self._feed()
                    buffered = 0
        finally:
            self._last_user = last
            self._user_hash.total += total
            self._user_hash.count += count
            self._buffered = buffered

    def _feed(self) -> None:
        """Hand the buffered lines to the compressor (one call, not one per user) and store
        the shards that filled up."""
        if self._lines:
            self._lines.append(b"")
            self._shards.write(b"\n".join(self._lines))
            self._lines.clear()
            self._buffered = 0
            self._store(self._shards.take())

    def flush(self) -> None:
        """Store everything added so far (still invisible until :meth:`commit`)."""
        self._check_open()
        self._feed()
        self._shards.close_shard()
        self._store(self._shards.take())

    def commit(
        self,
        *,
        now: float | None = None,
        expect_deps: Mapping[tuple[str, str], str] | None = None,
        **inputs: Any,
    ) -> CellRecord:
        """Make the result visible. ``inputs`` are the INPUT_FIELDS the result was computed
        from (composite_hash, components, code_hash, sim_hash, dep_results,
        root_fingerprints, category). :class:`LeaseLost` if another builder took the cell.
        ``expect_deps`` maps each dep cell (target, date) to the result hash the value was
        computed from: compared in the commit's transaction, and if one moved the commit is
        refused with :class:`DepsMoved` and the cell is released as it was before."""
        self._check_open()
        unknown = set(inputs) - set(INPUT_FIELDS)
        if unknown:
            raise StorageError(
                f"commit of {self.lease.target} on {self.lease.date}: unknown fields {sorted(unknown)}"
            )
        if self.kind == "per_date" and self._date_hash is None:
            raise StorageError(
                f"per_date result of {self.lease.target} on {self.lease.date} has no value to commit"
            )
        self.flush()
        result_hash = self._date_hash if self.kind == "per_date" else self._user_hash.hexdigest()
        result = dict(
            inputs,
            generation=self.lease.generation,
            result_hash=result_hash,
            shard_count=self._next_index,
            item_count=self.item_count,
            kind=self.kind,
            checksums=integrity.make_checksums(
                self.lease.generation,
                result_hash,
                self.kind,
                self._next_index,
                self.item_count,
                self._digests,
            ),
        )
        self._closed = True
        try:
            if expect_deps:
                return self.backend._commit(self.lease, result, _now(now), expect_deps)
            return self.backend._commit(self.lease, result, _now(now))
        except LeaseLost:
            self.backend._delete_generation(
                self.lease.target, self.lease.date, self.lease.generation
            )
            raise
        except DepsMoved:
            self.backend.release(self.lease)  # drops the shards; the attempt is not counted
            raise

    def abort(
        self, error: str | None = None, *, status: str = FAILED, now: float | None = None
    ) -> CellRecord | None:
        """End the attempt without a result: the previous result stays visible, the new
        shards are deleted and the cell gets ``status`` (``failed``, ``dead_letter`` or
        ``impossible``; the caller decides, e.g. from ``lease.attempts``). Returns None if
        the lease was lost meanwhile."""
        if status not in (FAILED, DEAD_LETTER, IMPOSSIBLE):
            raise StorageError(
                f"abort status {status!r} is not one of failed, dead_letter, impossible"
            )
        self._closed = True
        return self.backend._finish(self.lease, status, error, _now(now))

    def _store(self, shards: list[bytes]) -> None:
        if not shards:
            return
        numbered = {self._next_index + offset: shard for offset, shard in enumerate(shards)}
        self._digests.extend(integrity.shard_digest(shard) for shard in shards)
        self.backend._write_shards(
            self.lease.target, self.lease.date, self.lease.generation, numbered
        )
        self._next_index += len(shards)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(
                f"result writer of {self.lease.target} on {self.lease.date} is already committed or aborted"
            )

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not self._closed:
            self.abort(f"{type(exc).__name__}: {exc}")


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def check_put_status(
    target: str, date: str, status: str, changes: Mapping[str, Any], previous: CellRecord | None
) -> dict[str, Any]:
    """Validate a put_cell_status call; returns the changes to apply."""
    check_cell_key(target, date)
    if status not in STATUSES or status == RUNNING:
        raise StorageError(
            f"status {status!r} for {target} on {date} cannot be put (expected committed, failed, dead_letter or impossible)"
        )
    allowed = set(INPUT_FIELDS) | {"last_error", "attempts", "attempt_key"}
    unknown = set(changes) - allowed
    if unknown:
        raise StorageError(
            f"put_cell_status of {target} on {date}: unknown fields {sorted(unknown)}"
        )
    if status == COMMITTED and (previous is None or not previous.has_result):
        raise StorageError(f"{target} on {date} has no result: only a ResultWriter can commit it")
    return dict(changes)


def check_deps(lease: Lease, moved: list[str]) -> None:
    """Refuse a commit whose deps moved (see :func:`records.moved_deps`)."""
    if moved:
        raise DepsMoved(
            f"{lease.target} on {lease.date} was not committed: {', '.join(moved)} changed "
            "since it was planned (another builder committed it)"
        )
