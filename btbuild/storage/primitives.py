"""The primitives a storage backend implements, and the helpers every backend shares.

A backend is a subclass of :class:`~btbuild.storage.base.Backend` that implements the abstract
methods of :class:`BackendPrimitives`: one compare-and-set transaction on cell records
(:meth:`~BackendPrimitives._atomically`), batched reads and blind writes of records, shards
(write, read, list, delete), whole-target deletes, and the run log, SimHash registry and
equivalence ledger. The commit protocol (base.py) and repair (repair.py) are built on them.
"""

from __future__ import annotations

import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping
from types import TracebackType
from typing import Protocol, TypeVar

from btbuild.errors import StorageError
from btbuild.storage import codec
from btbuild.storage.outbox import PendingAlert
from btbuild.storage.reading import ResultReading
from btbuild.storage.records import RUNNING, CellRecord, Equivalence, RunRecord
from btbuild.vocabulary import CellSummary

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
T = TypeVar("T")
_B = TypeVar("_B", bound="BackendPrimitives")


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


def summary_of(record: CellRecord) -> CellSummary:
    """The planner's narrow view of a record."""
    return CellSummary(
        record.status, record.composite_hash, record.result_hash, record.generation, record.category
    )


def new_generation() -> str:
    """A fresh attempt id, unique across processes and machines."""
    return uuid.uuid4().hex


def _now(now: float | None) -> float:
    return time.time() if now is None else now


class CellTransaction(Protocol):
    """The cell records one :meth:`Backend._atomically` body reads and writes. A backend may
    require every read before the first write (Firestore does); the bodies here do so."""

    def read(self, target: str, date: str) -> CellRecord | None:
        """The record as of this transaction; None when missing or unreadable (a miss)."""

    def save(self, record: CellRecord) -> None: ...

    def delete(self, target: str, date: str) -> None: ...


class OutboxTransaction(CellTransaction, Protocol):
    """The transaction of a backend with ``supports_outbox``: it also stores a pending alert
    (btbuild/storage/outbox.py), atomically with the records it saves."""

    def put_alert(self, alert: PendingAlert) -> None: ...


class InlineTransaction(CellTransaction, Protocol):
    """The transaction of a backend with an ``inline_limit``: it also commits a record with
    its result's only shard, atomically (e.g. inside the record's own document)."""

    def save_with_shard(self, record: CellRecord, shard: bytes) -> None: ...


class BackendPrimitives(ResultReading, ABC):
    """Action cache, result shards, run log, SimHash registry and equivalence ledger.

    Times are epoch seconds; every method taking ``now`` uses ``time.time()`` when it is None
    (tests pass it to simulate expired leases). Unreadable records and shards are cache misses:
    they are skipped, never raised and never executed.
    """

    shard_limit: int = codec.SHARD_LIMIT
    # True: the transaction has ``put_alert`` and pending_alerts/_delete_alert are implemented
    # (alerts at least once); False (a plugin's default): alerts are published at most once
    supports_outbox: bool = False
    # > 0: a result that is one shard of at most this many bytes is committed with its record
    # by the transaction's ``save_with_shard`` (no separate shard to read); 0: never
    inline_limit: int = 0

    # ------------------------------------------------------------------ primitives

    @abstractmethod
    def _atomically(self, what: str, body: Callable[[CellTransaction], T]) -> T:
        """Run ``body`` as one atomic transaction on cell records and return what it returns:
        nothing it saved is visible if it raises, and a record it read cannot have changed
        when its writes land (a backend with optimistic transactions runs ``body`` again on
        contention, so ``body`` has no other side effects). Backend errors become one-line
        :class:`StorageError`; :class:`LeaseLost` and :class:`DepsMoved` pass through."""

    @abstractmethod
    def get_cells(
        self, targets: Iterable[str], dates: Iterable[str]
    ) -> dict[tuple[str, str], CellRecord]:
        """Every readable record for the cross product of ``targets`` and ``dates``, keyed
        ``(target, date)``, in a few round trips however many there are."""

    @abstractmethod
    def put_cells(self, records: Iterable[CellRecord]) -> int:
        """Write records as they are, without any lease check (imports, tooling, benchmarks).
        Returns how many were written."""

    @abstractmethod
    def _write_shards(
        self, target: str, date: str, generation: str, shards: Mapping[int, bytes]
    ) -> None:
        """Store shards (index -> compressed bytes) under a generation nobody reads yet."""

    @abstractmethod
    def _shard_generations(self, target: str, date: str) -> set[str]:
        """The generations that have shards stored for the cell."""

    @abstractmethod
    def _delete_shards(self, target: str, date: str, generations: Collection[str]) -> int:
        """Delete every shard of these generations of the cell; returns how many shards."""

    @abstractmethod
    def _all_shard_generations(self) -> dict[tuple[str, str], set[str]]:
        """(target, date) -> generations with shards stored, for every cell (garbage)."""

    @abstractmethod
    def delete_target(self, target: str) -> int:
        """Delete every cell (records and shards) of a target; returns how many cells."""

    @abstractmethod
    def migrate_category(self, target: str, new_package: str) -> int:
        """Delete the cells a target left under any package but ``new_package`` (it moved);
        returns how many cells. The run log and SimHash registry are kept."""

    @abstractmethod
    def append_run(self, run: RunRecord) -> None: ...

    @abstractmethod
    def runs(self, target: str | None = None, limit: int = 100) -> list[RunRecord]:
        """The newest runs first (by start time), of one target or all."""

    @abstractmethod
    def get_sim_hash(self, code_hash: str, fabricator_version: str) -> str | None: ...

    @abstractmethod
    def put_sim_hash(self, code_hash: str, fabricator_version: str, sim_hash: str) -> None: ...

    @abstractmethod
    def _add_equivalence(self, entry: Equivalence) -> None: ...

    @abstractmethod
    def equivalences(self, target: str | None = None) -> list[Equivalence]:
        """The ledger, oldest first, of one target or all."""

    def pending_alerts(self) -> dict[str, PendingAlert | None]:
        """Outbox entry id -> the pending alert (None: unreadable, to be deleted); a backend
        without ``supports_outbox`` has none."""
        return {}

    def start_pending_alerts(self) -> Callable[[], dict[str, PendingAlert | None]]:
        """:meth:`pending_alerts`, begun now and finished by the returned call (see
        ``start_read_checked``); this one reads when called."""
        return self.pending_alerts

    def _delete_alert(self, key: str) -> None:  # noqa: B027 - no outbox: nothing to delete
        """Delete one outbox entry (after its alert was published); a missing one is fine."""

    def close(self) -> None:  # noqa: B027 - backends without resources need not override
        """Release connections and files; the backend is unusable afterwards."""

    # ------------------------------------------------------------------ records

    def get_cell(self, target: str, date: str) -> CellRecord | None:
        return self.get_cells([target], [date]).get((target, date))

    def get_cell_summaries(
        self, targets: Iterable[str], dates: Iterable[str]
    ) -> dict[tuple[str, str], CellSummary]:
        """What the planner needs of every cell to see that it is up to date, keyed like
        :meth:`get_cells`. Backends override it with a narrow query; the full record is read
        only for cells whose inputs changed."""
        return {key: summary_of(r) for key, r in self.get_cells(targets, dates).items()}

    def _drop_unreferenced(self, target: str, date: str) -> int:
        """Delete the cell's shards that its record does not point at (neither its committed
        result nor its running attempt). Listing first, then reading the record, keeps the
        shards of an attempt that started meanwhile."""
        listed = self._shard_generations(target, date)
        if not listed:
            return 0
        current = self.get_cell(target, date)
        keep = set() if current is None else _referenced(current)
        stale = listed - keep
        return self._delete_shards(target, date, stale) if stale else 0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self: _B) -> _B:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _referenced(record: CellRecord) -> set[str]:
    """The generations a record points at: its committed result and its running attempt."""
    keep = {record.generation} if record.generation is not None else set()
    if record.status == RUNNING and record.lease_generation is not None:
        keep.add(record.lease_generation)
    return keep
