"""A committed per_user result as a mapping read shard by shard: what a per_date calculation
gets from ``ctx.dep`` for a per_user dep, so its memory does not grow with the users.

:class:`StreamedResult` behaves as the dict ``read_expected`` returns (user id -> value, in
ascending user id order): iteration, ``len``, ``items``, ``values``, ``keys``, ``in``,
``get``, ``[]``, ``==``, ``copy()``, ``|``, ``repr``, ``copy.deepcopy``. Iterating it decodes
one batch of lines at a time (the lines completed in one shard; a writer closes a shard every
``flush_every`` users). A look-up finds its batch by bisection over the batches' first and
last user ids (users are strictly ascending in every committed result: the writer refuses
anything else) and keeps the last :data:`CACHED_BATCHES` batches decoded. The first write
(``m[k] = v``, ``del``, ``pop``, ``update``...) turns it into a plain dict held inside, for
that calculation only. It is a :class:`collections.abc.MutableMapping`, not a ``dict``:
``isinstance(x, dict)`` is False and ``json.dumps`` refuses it (``dict(x)`` is a dict).

Every shard is checked against the record's sealed digest each time it is read, and a first
full pass checks the count and the result hash too. A result replaced meanwhile by one with
the same hash (another builder committed the same value) is followed to the new generation,
iteration resuming after the last user it yielded. Anything else that goes wrong is raised
where the calculation reads and kept in :attr:`StreamedResult.error`: the runner fails the
cell with it whatever the calculation did with the exception, so a result computed from a
partly read input is never committed.
"""

from __future__ import annotations

import copy
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import ItemsView, Iterator, KeysView, Mapping, MutableMapping, ValuesView
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from btbuild.errors import BtbuildError, DamagedResult, ResultMovedOn
from btbuild.storage import codec, integrity
from btbuild.storage.reading import moved_on, replaced_while_read
from btbuild.storage.records import COMMITTED, CellRecord

if TYPE_CHECKING:
    from btbuild.storage.reading import ResultReading

CACHED_BATCHES = 2  # decoded batches kept for look-ups (a batch is one shard's lines)
FOLLOW = 5  # replacements by an equal result followed during one read
_MISSING: Any = object()


@dataclass(frozen=True)
class _Batch:
    """The lines completed in shard ``last``, from ``offset`` in shard ``first`` on."""

    first: int
    offset: int
    last: int
    low: str = ""  # its first and last user ids
    high: str = ""


class _Moved(Exception):
    """Internal: a shard is gone because the result was replaced (``record`` is current)."""

    def __init__(self, record: CellRecord) -> None:
        super().__init__(record.generation)
        self.record = record


class StreamedResult(MutableMapping[str, Any]):
    """A per_user result ``user id -> value`` read shard by shard (see the module doc).
    ``record`` must be a committed per_user record with shard digests whose
    :func:`~btbuild.storage.integrity.record_problem` is None."""

    def __init__(self, reader: ResultReading, record: CellRecord) -> None:
        self._reader = reader
        self._record = record
        self._digests = integrity.digests_of(record) or []
        self._index: list[_Batch] | None = None
        self._highs: list[str] = []
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._own: dict[str, Any] | None = None  # a plain dict after the first write
        self.error: BtbuildError | None = None  # the first read failure (see the module doc)

    # -- the mapping -------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._record.item_count if self._own is None else len(self._own)

    def __iter__(self) -> Iterator[str]:
        return (user_id for user_id, _ in self._pairs())

    def __getitem__(self, key: str) -> Any:
        value = self._lookup(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self._lookup(key) is not _MISSING

    def get(self, key: str, default: Any = None) -> Any:
        value = self._lookup(key)
        return default if value is _MISSING else value

    def keys(self) -> KeysView[str]:
        return _Keys(self)

    def items(self) -> ItemsView[str, Any]:
        return _Items(self)

    def values(self) -> ValuesView[Any]:
        return _Values(self)

    def __setitem__(self, key: str, value: Any) -> None:
        self._owned()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._owned()[key]

    def clear(self) -> None:
        self._own = {}
        self._cache.clear()

    def copy(self) -> dict[str, Any]:
        return dict(self._pairs())

    def __reversed__(self) -> Iterator[str]:
        return reversed(list(self))

    def __or__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = self.copy()
        merged.update(other)
        return merged

    def __ror__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = dict(other)
        merged.update(self._pairs())
        return merged

    def __ior__(self, other: Any) -> StreamedResult:
        self.update(other)
        return self

    def __repr__(self) -> str:
        return repr(self.copy())

    def __copy__(self) -> dict[str, Any]:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return copy.deepcopy(self.copy(), memo)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (list(self._pairs()),))

    # -- reading -----------------------------------------------------------------------------

    def _owned(self) -> dict[str, Any]:
        if self._own is None:
            self._own = self.copy()
            self._cache.clear()
        return self._own

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Record (and raise) what goes wrong while reading: see :attr:`error`."""
        try:
            yield
        except ValueError as exc:
            raise self._failed(self._damaged(f"it is corrupt ({exc})")) from None
        except BtbuildError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: BtbuildError) -> BtbuildError:
        if self.error is None:
            self.error = exc
        return exc

    def _pairs(self) -> Iterator[tuple[str, Any]]:
        """Every (user id, value), one decoded batch in memory at a time."""
        if self._own is not None:
            yield from self._own.items()
            return
        last: str | None = None  # the last user yielded: a new generation resumes after it
        with self._reading():
            for _ in range(FOLLOW + 1):
                try:
                    for pairs in self._decoded(last):
                        yield from pairs
                        last = pairs[-1][0]
                    return
                except _Moved as moved:
                    self._follow(moved.record)
            raise self._changed()

    def _decoded(self, after: str | None) -> Iterator[list[tuple[str, Any]]]:
        """The decoded batches of the current generation (users after ``after`` only); a
        whole first pass also indexes the batches and checks the count and result hash."""
        indexing = self._index is None and after is None
        index: list[_Batch] = []
        hasher = codec.PerUserHash()
        for batch, lines in self._scan():
            pairs = codec.parse_user_lines(lines)
            if indexing:
                hasher.add_lines(lines)
                index.append(
                    _Batch(batch.first, batch.offset, batch.last, pairs[0][0], pairs[-1][0])
                )
            if after is not None:
                pairs = [pair for pair in pairs if pair[0] > after]
            if pairs:
                yield pairs
        if indexing:
            self._indexed(index, hasher)

    def _lookup(self, key: object) -> Any:
        if self._own is not None:
            return self._own.get(key, _MISSING)  # type: ignore[call-overload]  # any key, as dict.get takes
        hash(key)  # an unhashable key is a TypeError, as in a dict
        if not isinstance(key, str):
            return _MISSING
        with self._reading():
            for _ in range(FOLLOW + 1):
                try:
                    return self._find(key)
                except _Moved as moved:
                    self._follow(moved.record)
            raise self._changed()

    def _find(self, key: str) -> Any:
        if self._index is None:
            self._build_index()
        index = self._index or []
        position = bisect_left(self._highs, key)
        if position == len(index) or index[position].low > key:
            return _MISSING
        batch = self._cache.get(position)
        if batch is None:
            batch = self._load(index[position])
            self._cache[position] = batch
            while len(self._cache) > CACHED_BATCHES:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(position)
        return batch.get(key, _MISSING)

    def _build_index(self) -> None:
        """One pass indexing the batches (only their first and last lines are decoded)."""
        index: list[_Batch] = []
        hasher = codec.PerUserHash()
        for batch, lines in self._scan():
            hasher.add_lines(lines)
            low, high = codec.parse_user_line(lines[0])[0], codec.parse_user_line(lines[-1])[0]
            index.append(_Batch(batch.first, batch.offset, batch.last, low, high))
        self._indexed(index, hasher)

    def _indexed(self, index: list[_Batch], hasher: codec.PerUserHash) -> None:
        record = self._record
        if hasher.count != record.item_count or hasher.hexdigest() != record.result_hash:
            raise self._damaged("its hash does not match the record")
        self._index, self._highs = index, [batch.high for batch in index]

    def _load(self, batch: _Batch) -> dict[str, Any]:
        data = b"".join(self._shard(index) for index in range(batch.first, batch.last + 1))
        return dict(codec.parse_user_lines(data[batch.offset :].split(b"\n")[:-1]))

    def _scan(self) -> Iterator[tuple[_Batch, list[bytes]]]:
        """Every batch of the current generation in order, with its lines."""
        carry, first, offset = b"", 0, 0
        for index in range(self._record.shard_count):
            data = self._shard(index)
            lines = (carry + data).split(b"\n")
            carry = lines.pop()
            if lines:
                yield _Batch(first, offset, index), lines
                first, offset = (index, len(data) - len(carry)) if carry else (index + 1, 0)
        if carry:
            raise self._damaged("the last line has no newline")

    def _shard(self, index: int) -> bytes:
        """Shard ``index`` inflated, checked against its digest; :class:`_Moved` when it is
        gone because the result was replaced."""
        record = self._record
        target, date = record.target, record.date
        generation = record.generation or ""
        shard = self._reader._read_shards(target, date, generation, range(index, index + 1))[0]
        if shard is None:
            current = self._reader.get_cell(target, date)
            if current is not None and current.generation != record.generation:
                raise _Moved(current)
            raise self._damaged(f"shard {index} of {record.shard_count} is missing")
        if integrity.shard_digest(shard) != self._digests[index]:
            raise self._damaged(
                f"shard {index} of {record.shard_count} does not match its checksum"
            )
        return codec.inflate_shard(shard)

    def _follow(self, current: CellRecord) -> None:
        """The result was replaced: read on in the new generation if it holds the same value."""
        if current.has_result and current.result_hash != self._record.result_hash:
            raise moved_on(current, self._record.result_hash or "")
        if (
            not current.has_result
            or integrity.record_problem(current) is not None
            or integrity.digests_of(current) is None
        ):
            raise self._changed()
        self._record = current
        self._digests = integrity.digests_of(current) or []
        self._index, self._highs = None, []
        self._cache.clear()

    def _damaged(self, problem: str) -> DamagedResult:
        record = self._record
        return DamagedResult(
            f"{record.target} on {record.date} cannot be read: {problem}",
            target=record.target,
            date=record.date,
            generation=record.generation,
        )

    def _changed(self) -> ResultMovedOn:
        return replaced_while_read(self._record)


class _Keys(KeysView[str]):
    _mapping: StreamedResult

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping)


class _Items(ItemsView[str, Any]):
    _mapping: StreamedResult

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return self._mapping._pairs()


_second = itemgetter(1)


class _Values(ValuesView[Any]):
    _mapping: StreamedResult

    def __iter__(self) -> Iterator[Any]:
        return map(_second, self._mapping._pairs())


def plain(value: Any) -> Any:
    """``value`` with every :class:`StreamedResult` in it (a calculation may return one, or
    put one in its result) made a dict, so it encodes exactly as the dict it stands for.
    Containers holding none are returned as they are."""
    if not isinstance(value, _CONTAINERS):
        return value
    try:
        return _plain(value, {})
    except RecursionError:  # too deep to encode anyway: the encoder says so
        return value


_CONTAINERS = (dict, list, StreamedResult)


def _plain(value: Any, memo: dict[int, Any]) -> Any:
    if isinstance(value, StreamedResult):
        return value.copy()
    if id(value) in memo:  # shared (or a cycle, which the encoder refuses)
        return memo[id(value)]
    memo[id(value)] = value
    if isinstance(value, dict):
        fixed_dict: dict[Any, Any] | None = None
        for key, item in value.items():
            new = _plain(item, memo) if isinstance(item, _CONTAINERS) else item
            if new is not item:
                fixed_dict = dict(value) if fixed_dict is None else fixed_dict
                fixed_dict[key] = new
        memo[id(value)] = value if fixed_dict is None else fixed_dict
    elif isinstance(value, list):
        fixed_list: list[Any] | None = None
        for position, item in enumerate(value):
            new = _plain(item, memo) if isinstance(item, _CONTAINERS) else item
            if new is not item:
                fixed_list = list(value) if fixed_list is None else fixed_list
                fixed_list[position] = new
        memo[id(value)] = value if fixed_list is None else fixed_list
    return memo[id(value)]


def held_deps(target: Any, by_label: Mapping[str, Any], whole: dict[str, Any]) -> dict[str, Any]:
    """A simulation's whole-date deps as a build hands them to ``target``: with
    ``stream_deps``, each per_user dep's mapping becomes a :class:`StreamedResult` (already
    in memory, users ascending), so ``isinstance``, ``json.dumps`` and the rest behave in the
    simulation exactly as in the build. Everything else is left as it is."""
    if not target.stream_deps:
        return whole
    per_user = {by_label[label].name for label in target.deps if by_label[label].kind == "per_user"}
    return {
        name: _held(value) if name in per_user and isinstance(value, dict) else value
        for name, value in whole.items()
    }


def _held(values: dict[str, Any]) -> StreamedResult:
    result = StreamedResult.__new__(StreamedResult)
    result._reader = None  # type: ignore[assignment]  # never read: it holds its users
    result._record = CellRecord(target="", date="", status=COMMITTED)
    result._digests = []
    result._index = None
    result._highs = []
    result._cache = OrderedDict()
    result._own = dict(sorted(values.items()))  # the written state: a plain dict inside
    result.error = None
    return result
