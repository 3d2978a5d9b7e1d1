"""Canonical JSON, compressed shards and result hashes.

Everything a backend stores as a result goes through here, so every backend stores the same
bytes for the same value and every process computes the same hash:

* **Canonical JSON**: sorted keys, compact separators, UTF-8 (``ensure_ascii=False``), floats
  as ``repr`` (the shortest text that round-trips). ``-0.0`` is written as ``0.0`` because
  the two compare equal in Python and a result hash must not depend on the sign of a zero.
  NaN and Infinity are refused, and so is anything that is not ``dict`` (str keys), ``list``,
  ``str``, ``int``, ``float``, ``bool`` or ``None``; tuples too, because they would come back
  as lists and a result must read back equal to what was written. Subclasses of ``int``,
  ``float``, ``str``, ``dict`` and ``list`` (``numpy.float64`` is one) are written as their
  base type.
* **Streams**: a per_date result is the canonical bytes of its value; a per_user result is one
  line per user, ``["<user id>",<value>]\\n`` (canonical JSON never contains a raw newline).
* **Shards**: a stream is cut into independent zlib streams of at most :data:`SHARD_LIMIT`
  compressed bytes each. The guarantee is hard: the compressor is fed no more than the
  worst-case deflate expansion leaves room for, so even one huge value is split across shards.
* **Result hashes** (xxh3_128, domain separated so a per_date value and a per_user mapping
  never collide): a per_date value hashes its canonical bytes; a per_user result sums the
  hashes of its user lines modulo 2**128, so the hash does not depend on the order users were
  written in, and partial sums from parallel writers combine with :meth:`PerUserHash.merge`.

Speed: values are encoded by msgspec when its bytes are provably the ones above (exact JSON
types only, no ``null`` that could be a NaN, no negative zero, no float with an exponent or
under 1e-4 in magnitude - the only floats msgspec spells differently from Python's ``repr``);
anything else goes through the standard library's encoder, so the bytes (and the result
hashes, scheme ``v1``) are the same whichever path wrote them. Reading parses a whole shard's
lines with one ``msgspec.json.decode`` call, falling back to ``json.loads`` line by line for
what only it reads (lone surrogate escapes) or rejects. ``bench/bench_codec.py`` measures the
choices (stdlib vs orjson vs msgspec, zlib levels, zstd).

Nothing read back is ever unpickled or executed: hydration is JSON decoding.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
import xxhash

from btbuild.errors import CalculationError

SHARD_LIMIT = 900_000
"""Maximum compressed bytes in one shard (Firestore documents must stay under 1 MiB)."""

COMPRESSION_LEVEL = 1
"""zlib level of new shards (any level reads back; measured in bench/bench_codec.py)."""
HASH_SCHEME = "v1"

_PER_DATE_DOMAIN = b"btbuild/result/per_date/" + HASH_SCHEME.encode() + b"\x00"
_USER_DOMAIN = b"btbuild/result/user/" + HASH_SCHEME.encode() + b"\x00"
_PER_USER_DOMAIN = b"btbuild/result/per_user/" + HASH_SCHEME.encode() + b"\x00"
_MOD = 1 << 128

# Raw bytes fed between two sync flushes; after a sync flush the compressed size is exact.
_SEGMENT = 128 * 1024
# Bytes a finished zlib stream may add after the last sync flush (end block, adler32).
_FINAL_OVERHEAD = 32
# Below this much guaranteed room a shard is closed rather than fed in tiny pieces.
_MIN_ROOM = 512


# --------------------------------------------------------------------------- canonical JSON


class _Invalid(Exception):
    """Internal: a value is not JSON; ``keys`` collects the path while unwinding."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.keys: list[str | int] = []


def format_path(keys: Iterable[str | int], root: str = "$") -> str:
    """``$.u001.risk[3]``; keys that are not identifiers are quoted: ``$["a b"]``."""
    parts = [root]
    for key in keys:
        if isinstance(key, int):
            parts.append(f"[{key}]")
        elif key.isidentifier():
            parts.append(f".{key}")
        else:
            parts.append(f"[{json.dumps(key, ensure_ascii=False)}]")
    return "".join(parts)


def _scan(value: Any) -> bool:
    """Check that ``value`` is a JSON value; return True if it holds a negative zero."""
    kind = type(value)
    if kind is str or kind is bool or kind is int or value is None:
        return False
    if kind is float or (isinstance(value, float)):
        if math.isnan(value) or math.isinf(value):
            raise _Invalid(f"{value!r} is not allowed (NaN and Infinity have no JSON form)")
        return value == 0.0 and math.copysign(1.0, value) < 0
    if kind is dict or isinstance(value, dict):
        negative = False
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Invalid(f"key {key!r} is {type(key).__name__}; object keys must be strings")
            try:
                negative |= _scan(item)
            except _Invalid as exc:
                exc.keys.append(key)
                raise
        return negative
    if kind is list or isinstance(value, list):
        negative = False
        for index, item in enumerate(value):
            try:
                negative |= _scan(item)
            except _Invalid as exc:
                exc.keys.append(index)
                raise
        return negative
    if isinstance(value, (int, str)):
        return False
    if isinstance(value, tuple):
        raise _Invalid("tuple is not a JSON value; return a list")
    raise _Invalid(
        f"{type(value).__name__} is not a JSON value (expected dict, list, str, int, float, bool or None)"
    )


def _without_negative_zero(value: Any) -> Any:
    if isinstance(value, float):
        return 0.0 if value == 0.0 else value
    if isinstance(value, dict):
        return {key: _without_negative_zero(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_negative_zero(item) for item in value]
    return value


def _find_unencodable(value: Any) -> list[str | int] | None:
    """Path of the first string (or key) that UTF-8 cannot encode (a lone surrogate)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return []
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_unencodable(key)
            if found is None:
                found = _find_unencodable(item)
            if found is not None:
                return [key, *found]
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_unencodable(item)
            if found is not None:
                return [index, *found]
    return None


# The fast path: the C encoder, configured exactly like the careful path's json.dumps, on
# values made only of the exact JSON types (checked one container at a time, not one leaf at a
# time). Anything else, anything it raises on, and any output that may hold a negative zero
# go to the careful path, so both always produce the same bytes and the same errors.
_ENCODE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
).encode
_LEAF_TYPES = frozenset((str, int, float, bool, type(None)))
_MAYBE_NEGATIVE_ZERO = re.compile(r"-0\.0(?![0-9])")  # "-0.0" not followed by more digits
_join = "".join


def _plain(value: Any) -> bool:
    """True if ``value`` holds only exact dict (str keys), list, str, int, float, bool, None.

    Subclasses, tuples, sets and non-string keys make it False (the careful path decides);
    a value nested too deeply (or circular) raises RecursionError."""
    kind = type(value)
    if kind is dict:
        try:
            _join(value)  # C-level: TypeError if any key is not a string
        except TypeError:
            return False
        children: Any = value.values()
    elif kind is list:
        children = value
    else:
        return kind in _LEAF_TYPES
    if _LEAF_TYPES.issuperset(map(type, children)):
        return True
    for child in children:
        child_kind = type(child)
        if child_kind is dict or child_kind is list:
            if not _plain(child):
                return False
        elif child_kind not in _LEAF_TYPES:
            return False
    return True


_MSGSPEC = msgspec.json.Encoder(order="sorted").encode
# msgspec output that may differ from the standard encoder's: a negative zero, a float with an
# exponent (msgspec writes 1e16 and 1e-9 where Python writes 1e+16 and 1e-09) and a float under
# 1e-4 (msgspec: 0.00001, Python: 1e-05). Strings may match too: then the stdlib decides.
_MSGSPEC_DIFFERS = re.compile(rb"[0-9]e|0\.0000[0-9]|-0\.0(?![0-9])")
# Python refuses str() of an int over 4300 digits (msgspec raises too; checked again, cheaply)
_HUGE_INT = re.compile(rb"[0-9]{4300}")


def _fast_bytes(value: Any) -> bytes | None:
    """The canonical UTF-8 JSON of ``value`` by a fast path, or None: use the careful one."""
    try:
        if not _plain(value):
            return None
        data = _MSGSPEC(value)
    except (RecursionError, UnicodeEncodeError, TypeError, ValueError):  # deep, surrogate, huge int
        return None
    if (
        b"null" not in data
        and not (
            (b"e" in data or b"0.0000" in data or b"-0.0" in data) and _MSGSPEC_DIFFERS.search(data)
        )
        and (len(data) < 4300 or not _HUGE_INT.search(data))
    ):
        return data
    text = _fast_text(value)  # the standard encoder: refuses NaN, writes Python's repr
    if text is None:
        return None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None  # a lone surrogate: the careful path names where it is


def _fast_text(value: Any) -> str | None:
    """The canonical JSON text of a :func:`_plain` value by the standard C encoder, or None."""
    try:
        text = _ENCODE(value)
    except (TypeError, ValueError, RecursionError):  # NaN/Infinity, an int over 4300 digits
        return None
    if "-0.0" in text and _MAYBE_NEGATIVE_ZERO.search(text):
        return None
    return text


def canonical_bytes(value: Any, *, path: Iterable[str | int] = ()) -> bytes:
    """The canonical UTF-8 JSON of ``value``.

    Raises :class:`CalculationError` naming where inside the value the problem is, e.g.
    ``$.u001.risk: nan is not allowed``; ``path`` prefixes that location (a user id).
    """
    data = _fast_bytes(value)
    if data is not None:
        return data
    return careful_canonical_bytes(value, path=path)


def careful_canonical_bytes(value: Any, *, path: Iterable[str | int] = ()) -> bytes:
    """:func:`canonical_bytes` without the fast path: every value is walked before encoding.

    Always gives the same bytes (or the same error) as :func:`canonical_bytes`; kept public so
    tests can prove it."""
    prefix = list(path)
    try:
        negative_zero = _scan(value)
    except _Invalid as exc:
        where = format_path(prefix + exc.keys[::-1])
        raise CalculationError(f"{where}: {exc.reason}") from None
    except RecursionError:
        raise CalculationError(
            f"{format_path(prefix)}: value is nested too deeply to store as JSON"
        ) from None
    if negative_zero:
        value = _without_negative_zero(value)
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError as exc:  # an int too long for str() (Python's 4300-digit limit)
        raise CalculationError(f"{format_path(prefix)}: {exc}") from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        where = format_path(prefix + (_find_unencodable(value) or []))
        raise CalculationError(
            f"{where}: string holds a lone surrogate that UTF-8 cannot encode"
        ) from None


def user_line(user_id: str, value: Any) -> bytes:
    """One per_user stream line without its newline: ``["<user id>",<value>]``."""
    if type(user_id) is str:
        data = _fast_bytes([user_id, value])  # the line is the canonical JSON of this pair
        if data is not None:
            return data
    return careful_user_line(user_id, value)


def careful_user_line(user_id: str, value: Any) -> bytes:
    """:func:`user_line` without the fast path (same bytes, same errors)."""
    if not isinstance(user_id, str):
        raise CalculationError(
            f"user id {user_id!r} is {type(user_id).__name__}; user ids must be strings"
        )
    body = careful_canonical_bytes(value, path=[user_id])
    return b"[" + careful_canonical_bytes(user_id, path=[user_id]) + b"," + body + b"]"


def parse_user_line(line: bytes) -> tuple[str, Any]:
    """Inverse of :func:`user_line`; raises ``ValueError`` for anything malformed."""
    pair = json.loads(line)
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str):
        raise ValueError("not a [user id, value] line")
    return pair[0], pair[1]


_DECODE = msgspec.json.Decoder().decode


def parse_user_lines(lines: list[bytes]) -> list[tuple[str, Any]]:
    """:func:`parse_user_line` of many lines with one parser call where it gives the same
    values (it does unless a string holds a lone surrogate escape);
    ``ValueError`` for anything malformed. (Lines that are not valid alone but parse as two
    pairs once joined are caught by the result hash every reader checks.)"""
    if not lines:
        return []
    try:
        pairs = _DECODE(b"[" + b",".join(lines) + b"]")
    except msgspec.DecodeError:
        pairs = None  # malformed, or what only json.loads reads: decide line by line
    if pairs is None or len(pairs) != len(lines):
        return [parse_user_line(line) for line in lines]
    result = []
    for pair in pairs:
        if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
            raise ValueError("not a [user id, value] line")
        result.append((pair[0], pair[1]))
    return result


# --------------------------------------------------------------------------- result hashes


def per_date_hash(canonical: bytes) -> str:
    """Result hash of a per_date value from its canonical bytes."""
    return xxhash.xxh3_128_hexdigest(_PER_DATE_DOMAIN + canonical)


_line_hash = xxhash.xxh3_128_intdigest


class PerUserHash:
    """Order-independent hash of a per_user result, built from its user lines."""

    __slots__ = ("total", "count")

    def __init__(self, total: int = 0, count: int = 0) -> None:
        self.total = total
        self.count = count

    def add_line(self, line: bytes) -> None:
        # ``total`` is reduced modulo 2**128 only when read: a sum of n 128-bit values grows
        # by log2(n) bits, and one modulo per user is measurable on the hot write path.
        self.total += _line_hash(_USER_DOMAIN + line)
        self.count += 1

    def merge(self, other: PerUserHash) -> PerUserHash:
        """The hash of the union of two disjoint sets of users (parallel writers)."""
        return PerUserHash((self.total + other.total) % _MOD, self.count + other.count)

    def hexdigest(self) -> str:
        return xxhash.xxh3_128_hexdigest(
            _PER_USER_DOMAIN
            + (self.total % _MOD).to_bytes(16, "big")
            + self.count.to_bytes(8, "big")
        )


def result_hash(kind: str, value: Any) -> str:
    """Result hash of a whole value: for ``per_user`` a mapping user id -> value."""
    if kind == "per_date":
        return per_date_hash(canonical_bytes(value))
    hasher = PerUserHash()
    for user_id, item in value.items():
        hasher.add_line(user_line(user_id, item))
    return hasher.hexdigest()


# --------------------------------------------------------------------------- shards


def _worst_case(raw: int) -> int:
    """Upper bound on the deflate output for ``raw`` input bytes plus one sync flush."""
    return raw + (raw >> 8) + 64


class ShardBuilder:
    """Cuts a byte stream into zlib shards of at most ``limit`` compressed bytes.

    Feed it with :meth:`write`; finished shards pile up until :meth:`take` hands them out.
    :meth:`close_shard` ends the current shard early (an intermediate flush).
    """

    def __init__(self, limit: int = SHARD_LIMIT, level: int = COMPRESSION_LEVEL) -> None:
        if limit < 4 * 1024:
            raise ValueError("shard limit must be at least 4 KiB")
        self.limit = limit
        self.level = level
        self._done: list[bytes] = []
        self._reset()

    def _reset(self) -> None:
        self._compressor = zlib.compressobj(self.level)
        self._parts: list[bytes] = []
        self._exact = 0  # compressed bytes emitted up to the last sync flush
        self._pending = 0  # raw bytes fed since the last sync flush
        self._empty = True

    def _emit(self, chunk: bytes) -> None:
        if chunk:
            self._parts.append(chunk)
            self._exact += len(chunk)

    def _sync(self) -> None:
        self._emit(self._compressor.flush(zlib.Z_SYNC_FLUSH))
        self._pending = 0

    def _room(self) -> int:
        """Raw bytes that can still be fed with the shard guaranteed under the limit."""
        free = self.limit - self._exact - _FINAL_OVERHEAD - _worst_case(self._pending)
        return max(0, free * 256 // 257)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = self._room()
            if room < min(len(view), _MIN_ROOM) and self._pending:
                self._sync()  # learn the exact size; compression usually frees plenty
                room = self._room()
            if room < min(len(view), _MIN_ROOM) and not self._empty:
                self.close_shard()
                room = self._room()
            take = min(len(view), room, _SEGMENT - self._pending)
            piece, view = view[:take], view[take:]
            self._emit(self._compressor.compress(piece))
            self._pending += take
            self._empty = False
            if self._pending >= _SEGMENT:
                self._sync()

    def close_shard(self) -> None:
        """Finish the current shard (if it holds anything) and start a new one."""
        if self._empty:
            return
        self._emit(self._compressor.flush(zlib.Z_FINISH))
        shard = b"".join(self._parts)
        assert len(shard) <= self.limit, "shard over the limit: the worst-case bound is wrong"
        self._done.append(shard)
        self._reset()

    def take(self) -> list[bytes]:
        """Hand out (and forget) the finished shards."""
        done, self._done = self._done, []
        return done


def encode_shards(stream: bytes, limit: int = SHARD_LIMIT) -> list[bytes]:
    """Cut a whole stream into shards (the writer does the same incrementally)."""
    builder = ShardBuilder(limit)
    builder.write(stream)
    builder.close_shard()
    return builder.take()


def inflate_shard(shard: bytes) -> bytes:
    """Decompress one shard; ``ValueError`` if it is not one complete zlib stream."""
    decompressor = zlib.decompressobj()
    try:
        data = decompressor.decompress(shard)
    except zlib.error as exc:
        raise ValueError(f"corrupt shard: {exc}") from None
    if not decompressor.eof or decompressor.unused_data:
        raise ValueError("corrupt shard: truncated or trailing bytes")
    return data


def iter_user_lines(shards: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of a per_user stream, joining lines that were split across shards."""
    carry = b""
    for shard in shards:
        data = carry + inflate_shard(shard)
        lines = data.split(b"\n")
        carry = lines.pop()
        yield from lines
    if carry:
        raise ValueError("corrupt result: the last line has no newline")


def iter_user_line_batches(shards: Iterable[bytes]) -> Iterator[list[bytes]]:
    """:func:`iter_user_lines` a shard's worth at a time (lines split across shards joined)."""
    carry = b""
    for shard in shards:
        lines = (carry + inflate_shard(shard)).split(b"\n")
        carry = lines.pop()
        if lines:
            yield lines
    if carry:
        raise ValueError("corrupt result: the last line has no newline")


def hydrate_per_user(shards: Iterable[bytes]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for lines in iter_user_line_batches(shards):
        result.update(parse_user_lines(lines))
    return result


def loads(data: bytes) -> Any:
    """``json.loads`` of canonical bytes, by msgspec where it reads them."""
    try:
        return _DECODE(data)
    except msgspec.DecodeError:
        return json.loads(data)


def hydrate_per_date(shards: Iterable[bytes]) -> Any:
    return loads(b"".join(inflate_shard(shard) for shard in shards))
