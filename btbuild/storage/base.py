"""The storage backend interface: a few primitives per backend, the protocol in one place.

A backend implements small, atomic primitives (the abstract methods below): run a body in a
transaction on cell records (:meth:`Backend._atomically`, the compare-and-set), batched reads
and blind writes of records, write/read/list/delete shards, and the run log, SimHash registry
and equivalence ledger. Every read-check-transition-save step of the commit protocol is written
once, here, on top of them, so every backend stores the same bytes and keeps the same crash
guarantees:

1. :meth:`Backend.acquire` atomically takes a cell and hands out a fresh *generation* (attempt
   id); the cell keeps pointing at its last committed generation. What a crashed attempt (a
   zombie lease it takes over) left behind is deleted right there.
2. :class:`~btbuild.storage.writer.ResultWriter` writes shards under the new generation;
   readers never look there.
3. :meth:`ResultWriter.commit` writes the cell record pointing at the new generation, after
   checking in the same transaction that the lease is still ours: this is the single step that
   makes the new result visible. Only then are older generations deleted.

A crash before step 3 leaves the old result visible and orphan shards that the next attempt at
the cell (or :meth:`Backend.collect_garbage`) deletes. Readers follow the record only, and
retry when a commit deleted the generation they were reading.

Shards are deleted outside the record transactions, race-free: the generations are listed
*before* the record is read, and the record's committed and running generations are kept, so a
builder that took the cell meanwhile keeps what it wrote.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, cast

from btbuild.errors import DepsMoved, LeaseLost, StorageError
from btbuild.storage import records as rec
from btbuild.storage.outbox import PendingAlert
from btbuild.storage.primitives import (
    BackendPrimitives,
    CellTransaction,
    InlineTransaction,
    OutboxTransaction,
    _now,
    check_cell_key,
    new_generation,
    summary_of,
)
from btbuild.storage.records import (
    COMMITTED,
    EXPIRED,
    INPUT_FIELDS,
    RUNNING,
    STATUSES,
    CellRecord,
    Lease,
)
from btbuild.storage.repair import Repair
from btbuild.storage.writer import ResultWriter
from btbuild.vocabulary import CellSummary

__all__ = [
    "Backend",
    "BackendPrimitives",
    "CellSummary",
    "CellTransaction",
    "ResultWriter",
    "check_cell_key",
    "new_generation",
    "summary_of",
]


def _committed_by(current: CellRecord | None, lease: Lease) -> bool:
    """Did ``lease``'s attempt commit? Then its generation's shards are the cell's result: an
    abort or release after the commit (an error while logging the run) must not delete them."""
    return current is not None and current.generation == lease.generation


class Backend(Repair):
    """A storage backend: implement the primitives of
    :class:`~btbuild.storage.primitives.BackendPrimitives`; the commit protocol is here."""

    def put_cell_status(
        self,
        target: str,
        date: str,
        status: str,
        *,
        now: float | None = None,
        expect: tuple[str | None, str | None] | None = None,
        **changes: Any,
    ) -> CellRecord | None:
        """Record a cell state that has no new result: ``impossible``, ``failed``,
        ``dead_letter``, or ``committed`` to refresh the input hashes of an existing result
        (a cosmetic change). ``changes`` may set ``last_error``, ``attempts`` and the input
        fields (composite_hash, components, code_hash, sim_hash, dep_results,
        root_fingerprints, category). The committed result stays as it is. Returns None,
        changing nothing, while another builder holds a live lease on the cell.

        ``expect`` = (generation, composite hash) makes it a compare-and-set: it also changes
        nothing (None) unless the cell is still committed with exactly that result and those
        inputs - the record a caller decided from. Input hashes adopted on a cosmetic proof
        must never be written over another builder's newer result (that pairs inputs with a
        result they did not produce: a stale cell that looks up to date)."""
        when = _now(now)

        def body(txn: CellTransaction) -> CellRecord | None:
            previous = txn.read(target, date)
            if expect is not None and (
                previous is None
                or previous.status != COMMITTED
                or (previous.generation, previous.composite_hash) != expect
            ):
                return None
            checked = check_put_status(target, date, status, changes, previous)
            if previous is not None and previous.is_leased(when):
                return None
            record = rec.status_put(previous, target, date, status, checked, when)
            txn.save(record)
            return record

        check_cell_key(target, date)
        return self._atomically(f"record {status} for {target} on {date}", body)

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
        """Atomically take the cell for one attempt: succeeds when nobody holds a live lease
        (an expired one is a zombie and is taken over, and so is one held by ``dead_owners``,
        builders known to be gone). Sets status ``running``, counts the attempt and returns a
        lease with a fresh generation; None when the cell is taken. The shards a taken-over
        attempt wrote (never visible) are deleted before this returns."""
        check_cell_key(target, date)
        when = _now(now)
        generation = new_generation()

        def body(txn: CellTransaction) -> Lease | None:
            previous = txn.read(target, date)
            taken = rec.leased(
                previous, target, date, owner, generation, lease_seconds, when, dead_owners
            )
            if taken is None:
                return None
            txn.save(taken[0])
            return taken[1]

        lease = self._atomically(f"lease {target} on {date}", body)
        previous = lease.previous if lease is not None else None
        if (
            previous is not None
            and previous.status == RUNNING
            and previous.lease_generation not in (None, previous.generation)
        ):
            self._delete_shards(target, date, [previous.lease_generation or ""])
        return lease

    def renew(self, lease: Lease, now: float | None = None) -> Lease:
        """Extend the lease by its ``lease_seconds``; :class:`LeaseLost` if it was taken over."""

        def body(txn: CellTransaction) -> Lease:
            current = txn.read(lease.target, lease.date)
            if current is None or not rec.holds(current, lease):
                raise LeaseLost(
                    f"lease on {lease.target} for {lease.date} was taken over by another builder"
                )
            record, renewed = rec.renewed(current, lease, _now(now))
            txn.save(record)
            return renewed

        return self._atomically(f"renew the lease on {lease.target} for {lease.date}", body)

    def release(self, lease: Lease, now: float | None = None) -> None:
        """Give the cell back unchanged (the work turned out not to be needed, or the build
        stops) and drop the shards written under the lease. Does nothing to the record of a
        cell someone else took over."""

        def body(txn: CellTransaction) -> bool:
            current = txn.read(lease.target, lease.date)
            if current is not None and rec.holds(current, lease):
                restored = rec.released(current, lease, _now(now))
                if restored is None:
                    txn.delete(lease.target, lease.date)
                else:
                    txn.save(restored)
            return _committed_by(current, lease)

        if not self._atomically(f"release {lease.target} on {lease.date}", body):
            self._delete_shards(lease.target, lease.date, [lease.generation])

    def _finish(
        self, lease: Lease, status: str, error: str | None, now: float
    ) -> CellRecord | None:
        """End the attempt without a result and drop its shards; None if the lease was lost
        (or the attempt committed already: its shards are then the cell's result, kept)."""

        def body(txn: CellTransaction) -> tuple[CellRecord | None, bool]:
            current = txn.read(lease.target, lease.date)
            if current is None or not rec.holds(current, lease):
                return None, _committed_by(current, lease)
            record = rec.finished(current, status, error, now)
            txn.save(record)
            return record, False

        record, committed = self._atomically(
            f"record {status} for {lease.target} on {lease.date}", body
        )
        if not committed:
            self._delete_shards(lease.target, lease.date, [lease.generation])
        return record

    def _commit(
        self,
        lease: Lease,
        result: Mapping[str, Any],
        now: float,
        expect_deps: Mapping[tuple[str, str], str] | None = None,
        alert: bool = False,
        inline: bytes | None = None,
    ) -> CellRecord:
        """Atomically check the lease and write the record pointing at ``lease.generation``
        (the visible commit), then delete every other generation of the cell.
        :class:`LeaseLost` (writing nothing) if the lease was taken over. ``expect_deps``:
        (target, date) -> result hash each dep cell must still hold, read in the same
        transaction; :class:`DepsMoved` (writing nothing) if one moved. ``alert``: when the
        result hash changes, store a :class:`PendingAlert` in the same transaction (a
        backend with ``supports_outbox``; see btbuild/storage/outbox.py). ``inline``: the
        result's only shard, not written yet: committed with the record by the transaction
        (``inline_limit``), else written as a shard first."""
        if inline is not None and len(inline) > self.inline_limit:
            self._write_shards(lease.target, lease.date, lease.generation, {0: inline})
            inline = None

        def body(txn: CellTransaction) -> CellRecord:
            current = txn.read(lease.target, lease.date)
            if current is None or not rec.holds(current, lease):
                raise LeaseLost(
                    f"lease on {lease.target} for {lease.date} was taken over by another builder; its result was not committed"
                )
            if expect_deps:  # read in the transaction: a dep written meanwhile retries it
                found = {dep: txn.read(*dep) for dep in expect_deps}
                check_deps(lease, rec.moved_deps(expect_deps, found))
            record = rec.committed(current, lease, result, now)
            if inline is None:
                txn.save(record)
            else:
                cast(InlineTransaction, txn).save_with_shard(record, inline)
            pending = pending_alert(lease.previous, record, now) if alert else None
            if pending is not None and self.supports_outbox:
                cast(OutboxTransaction, txn).put_alert(pending)
            return record

        record = self._atomically(f"commit {lease.target} on {lease.date}", body)
        self._drop_unreferenced(lease.target, lease.date)
        return record

    # ------------------------------------------------------------------ results, integrity

    def open_writer(self, lease: Lease, kind: str) -> ResultWriter:
        """A writer for the result of the attempt ``lease`` stands for."""
        return ResultWriter(self, lease, kind)


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


def result_before(previous: CellRecord | None) -> str | None:
    """The result hash a commit replaces (an expired result's hash still counts)."""
    if previous is None:
        return None
    return previous.result_hash if previous.has_result or previous.status == EXPIRED else None


def pending_alert(
    previous: CellRecord | None, record: CellRecord, now: float
) -> PendingAlert | None:
    """The alert a commit of ``record`` over ``previous`` announces; None when its result
    hash did not change (a rebuild that changes nothing alerts nobody)."""
    before = result_before(previous)
    if record.result_hash == before:
        return None
    return PendingAlert(
        record.target,
        record.date,
        record.generation or "",
        record.result_hash,
        before,
        record.kind,
        record.item_count,
        now,
    )


def check_deps(lease: Lease, moved: list[str]) -> None:
    """Refuse a commit whose deps moved (see :func:`records.moved_deps`)."""
    if moved:
        raise DepsMoved(
            f"{lease.target} on {lease.date} was not committed: {', '.join(moved)} changed "
            "since it was planned (another builder committed it)"
        )
