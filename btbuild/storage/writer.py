"""The result writer every backend shares: shards are written under the attempt's own
generation, nothing is visible before :meth:`ResultWriter.commit` (see base.py)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from btbuild.errors import DepsMoved, LeaseLost, StorageError
from btbuild.storage import codec, integrity
from btbuild.storage.records import DEAD_LETTER, FAILED, IMPOSSIBLE, INPUT_FIELDS, CellRecord, Lease

if TYPE_CHECKING:
    from btbuild.storage.base import Backend

# Buffered user lines are fed to the compressor once they reach this many bytes (or on flush).
_FEED_BYTES = 64 * 1024
# Scalar values of add_user wait for one batch encode (codec.scalar_user_lines) of this many.
_BATCH = 2048
_INT64 = 1 << 63
_user_line = codec.user_line


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
        # users added with a finite float or an int64 value, not encoded yet (in order, after
        # the lines of _lines)
        self._batch_ids: list[str] = []
        self._batch_values: list[Any] = []
        self._closed = False

    @property
    def item_count(self) -> int:
        if self.kind == "per_user":  # lines not fed yet are not hashed yet
            return self._user_hash.count + len(self._lines) + len(self._batch_ids)
        return int(self._date_hash is not None)

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
        """Append one user of a per_user result: :meth:`add` without building a mapping
        (the executor's hot path: one user at a time; the same bytes, hash and errors)."""
        last = self._last_user
        if (
            self._closed
            or self.kind != "per_user"
            or type(user_id) is not str
            or (last is not None and user_id <= last)
        ):
            self.add_many(((user_id, value),))  # raises what it says
            return
        kind = type(value)
        if (
            kind is float and value - value == 0.0 or kind is int and -_INT64 < value < _INT64
        ) and user_id.isascii():  # encoded in a batch: nothing in it can fail
            self._last_user = user_id
            ids = self._batch_ids
            ids.append(user_id)
            self._batch_values.append(value)
            if len(ids) >= _BATCH:
                self._encode_batch()
                if self._buffered >= _FEED_BYTES:
                    self._feed()
            return
        if self._batch_ids:
            self._encode_batch()  # the lines stay in user order
        line = _user_line(user_id, value)  # CalculationError: nothing of this user is kept
        self._last_user = user_id
        self._lines.append(line)  # hashed with the others when fed (_feed)
        self._buffered += len(line) + 1
        if self._buffered >= _FEED_BYTES:
            self._feed()

    def _encode_batch(self) -> None:
        """The batched users' lines (one msgspec call, the bytes of user_line) to _lines."""
        lines = codec.scalar_user_lines(self._batch_ids, self._batch_values)
        self._batch_ids, self._batch_values = [], []
        self._lines += lines
        self._buffered += sum(map(len, lines)) + len(lines)

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
        if self._batch_ids:
            self._encode_batch()  # the lines stay in user order
        user_line = codec.user_line
        lines = self._lines
        last = self._last_user
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
                lines.append(line)  # hashed when fed (_feed)
                buffered += len(line) + 1
                if buffered >= _FEED_BYTES:
                    self._buffered = buffered
                    self._feed()
                    buffered = 0
        finally:
            self._last_user = last
            self._buffered = buffered

    def _feed(self) -> None:
        """Hand the buffered lines to the compressor (one call, not one per user) and store
        the shards that filled up."""
        if self._batch_ids:
            self._encode_batch()
        if self._lines:
            self._user_hash.add_lines(self._lines)  # one C-level pass over the lines
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
        alert: bool = False,
        **inputs: Any,
    ) -> CellRecord:
        """Make the result visible. ``inputs`` are the INPUT_FIELDS the result was computed
        from (composite_hash, components, code_hash, sim_hash, dep_results,
        root_fingerprints, category). :class:`LeaseLost` if another builder took the cell.
        ``expect_deps`` maps each dep cell (target, date) to the result hash the value was
        computed from: compared in the commit's transaction, and if one moved the commit is
        refused with :class:`DepsMoved` and the cell is released as it was before.
        ``alert``: record a pending alert with the commit when the result hash changes
        (btbuild/storage/outbox.py)."""
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
        inline = self._last_shards()
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
            if alert or inline is not None:
                return self.backend._commit(
                    self.lease, result, _now(now), expect_deps, alert, inline
                )
            if expect_deps:
                return self.backend._commit(self.lease, result, _now(now), expect_deps)
            return self.backend._commit(self.lease, result, _now(now))
        except LeaseLost:
            self.backend._delete_shards(self.lease.target, self.lease.date, [self.lease.generation])
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

    def _last_shards(self) -> bytes | None:
        """:meth:`flush` before the commit, except that a result that is one shard within
        the backend's ``inline_limit`` is returned instead of stored: the commit stores it
        with the record."""
        self._feed()
        self._shards.close_shard()
        shards = self._shards.take()
        if (
            self._next_index == 0
            and len(shards) == 1
            and len(shards[0]) <= self.backend.inline_limit
        ):
            self._digests.append(integrity.shard_digest(shards[0]))
            self._next_index = 1
            return shards[0]
        self._store(shards)
        return None

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
