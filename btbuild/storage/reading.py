"""Reading committed results: every read is checked against the record (its seal, each
shard's checksum, the result hash), so a damaged result is never read as "no result"."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from typing import Any

from btbuild.errors import DamagedResult, ResultMovedOn
from btbuild.storage import codec, integrity
from btbuild.storage.records import CellRecord

_READ_RETRIES = 5


def moved_on(record: CellRecord, planned: str) -> DamagedResult:
    """The error for a cell whose result is not the one a reader was planned with: another
    builder's commit (:class:`ResultMovedOn`) when the record is intact, else damage."""
    problem = integrity.record_problem(record)
    if problem is not None:
        return DamagedResult(
            f"{record.target} on {record.date} cannot be read: {problem}",
            target=record.target,
            date=record.date,
            generation=record.generation,
        )
    return ResultMovedOn(
        f"{record.target} on {record.date} holds result {record.result_hash}, not the "
        f"{planned} planned (another builder committed it since the plan)",
        target=record.target,
        date=record.date,
    )


def replaced_while_read(record: CellRecord) -> ResultMovedOn:
    """The error for a result another builder's commit replaced (or that was forgotten) while
    it was being read: an input that moved since the plan, like :func:`moved_on` (the reader
    is given back and planned again, no attempt counted), never a failure of the reader."""
    return ResultMovedOn(
        f"result of {record.target} on {record.date} changed or vanished while it was being "
        "read (another builder committed or forgot it meanwhile)",
        target=record.target,
        date=record.date,
    )


class ResultReading:
    """The result readers every backend shares; they need only :meth:`get_cell` and
    :meth:`_read_shards`."""

    @abstractmethod
    def get_cell(self, target: str, date: str) -> CellRecord | None: ...

    @abstractmethod
    def _read_shards(
        self, target: str, date: str, generation: str, indices: range
    ) -> list[bytes | None]:
        """The shards at ``indices`` of a generation; None for each one that is missing."""

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
                raise moved_on(record, result_hash)
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
            f"{target} on {date} cannot be read: {problem}",
            target=target,
            date=date,
            generation=None if record is None else record.generation,
        )

    def read_streamed(self, target: str, date: str, result_hash: str | None = None) -> Any:
        """:meth:`read_expected` of a per_user result as a
        :class:`~btbuild.storage.streamed.StreamedResult` (read shard by shard, each shard
        checked as it is read); the record is checked now. Anything else (a per_date
        result, a legacy record without shard digests) is read whole."""
        from btbuild.storage.streamed import StreamedResult

        record = self.get_cell(target, date)
        if (
            record is None
            or not record.has_result
            or record.kind != "per_user"
            or (result_hash is not None and record.result_hash != result_hash)
            or integrity.record_problem(record) is not None
            or integrity.digests_of(record) is None
        ):
            return self.read_expected(target, date, result_hash)  # None, whole, or why not
        return StreamedResult(self, record)

    def has_result(self, target: str, date: str) -> bool:
        """True if the cell has a committed result whose shards are all present."""
        record = self.get_cell(target, date)
        if record is None or not record.has_result:
            return False
        shards = self._read_shards(target, date, record.generation or "", range(record.shard_count))
        return all(shard is not None for shard in shards)

    def iter_result(
        self,
        target: str,
        date: str,
        result_hash: str | None = None,
        part: tuple[int, int] | None = None,
    ) -> Iterator[tuple[str, Any]]:
        """Stream a per_user result as (user id, value) in the order it was written, one shard
        in memory at a time. Yields nothing when there is no readable result (unless
        ``result_hash``, the hash the caller expects, is given: then that is a
        :class:`DamagedResult`). Each shard is checked against its checksum before any of its
        users is yielded; a result that turns out corrupt, or is replaced and deleted
        mid-stream, raises :class:`DamagedResult` (:class:`ResultMovedOn` when replaced) after
        the items already yielded (the result hash is checked at the end). ``part``: ``(part,
        parts)``, only the users of that part (:func:`~btbuild.storage.codec.user_shard`) are
        parsed and yielded; every line is still checked and hashed."""
        for user_id, value, _line in self.iter_result_lines(target, date, result_hash, part):
            yield user_id, value

    def iter_result_lines(
        self,
        target: str,
        date: str,
        result_hash: str | None = None,
        part: tuple[int, int] | None = None,
    ) -> Iterator[tuple[str, Any, bytes]]:
        """:meth:`iter_result` with each user's canonical line: (user id, value, line)."""
        record = self.get_cell(target, date)
        if record is None or not record.has_result or record.kind != "per_user":
            if result_hash is not None:
                raise DamagedResult(
                    f"{target} on {date} cannot be read: it has no readable per_user result",
                    target=target,
                    date=date,
                    generation=None if record is None else record.generation,
                )
            return
        if result_hash is not None and record.result_hash != result_hash:
            raise moved_on(record, result_hash)
        problem = integrity.record_problem(record)
        if problem is not None:
            raise DamagedResult(
                f"{target} on {date} cannot be read: {problem}",
                target=target,
                date=date,
                generation=record.generation,
            )
        shards = self._checked_shards(record)
        hasher = codec.PerUserHash()
        try:
            for lines in codec.iter_user_line_batches(shards):
                hasher.add_lines(lines)  # checked at the end, after the last user
                if part is not None:
                    lines = codec.lines_in_part(lines, *part)
                pairs = codec.parse_user_lines(lines)
                for line, (user_id, value) in zip(lines, pairs, strict=True):
                    yield user_id, value, line
        except ValueError as exc:
            raise DamagedResult(
                f"result of {target} on {date} is corrupt: {exc}",
                target=target,
                date=date,
                generation=record.generation,
            ) from None
        if hasher.count != record.item_count or hasher.hexdigest() != record.result_hash:
            raise DamagedResult(
                f"result of {target} on {date} is corrupt: its hash does not match the record",
                target=target,
                date=date,
                generation=record.generation,
            )

    def _moved_on(self, record: CellRecord) -> bool:
        current = self.get_cell(record.target, record.date)
        return current is not None and current.generation != record.generation

    def _checked_shards(self, record: CellRecord) -> Iterator[bytes]:
        """The shards of a record's result one at a time, each checked against its digest;
        :class:`DamagedResult` for a missing or altered one (:class:`ResultMovedOn` when a
        commit replaced the result meanwhile)."""
        target, date = record.target, record.date
        generation = record.generation or ""
        digests = integrity.digests_of(record)
        for index in range(record.shard_count):
            shard = self._read_shards(target, date, generation, range(index, index + 1))[0]
            if shard is None:
                if self._moved_on(record):  # not damage: the reader is planned again
                    raise replaced_while_read(record)
                raise DamagedResult(
                    f"{target} on {date} cannot be read: shard {index} of {record.shard_count} is missing",
                    target=target,
                    date=date,
                    generation=generation,
                )
            if digests is not None and integrity.shard_digest(shard) != digests[index]:
                raise DamagedResult(
                    f"{target} on {date} cannot be read: shard {index} of {record.shard_count} does not match its checksum",
                    target=target,
                    date=date,
                    generation=generation,
                )
            yield shard
