"""Canonical JSON, compressed shards and result hashes.

Everything a backend stores as a result goes through here, so every backend stores the same
bytes for the same value and every process computes the same hash:

* **Canonical JSON** (:mod:`btbuild.storage.canonical`): sorted keys, compact separators, UTF-8 (``ensure_ascii=False``), floats
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

import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import xxhash

from btbuild.storage.canonical import (  # re-exported: the codec is one API
    canonical_bytes,
    careful_canonical_bytes,
    careful_user_line,
    format_path,
    lines_in_part,
    loads,
    parse_user_line,
    parse_user_lines,
    scalar_user_lines,
    user_id_of_line,
    user_line,
    user_shard,
)

__all__ = [
    "COMPRESSION_LEVEL",
    "SHARD_LIMIT",
    "PerUserHash",
    "ShardBuilder",
    "canonical_bytes",
    "careful_canonical_bytes",
    "careful_user_line",
    "encode_shards",
    "format_path",
    "hydrate_per_date",
    "hydrate_per_user",
    "hydrate_per_user_hashed",
    "inflate_shard",
    "iter_user_line_batches",
    "iter_user_lines",
    "loads",
    "parse_user_line",
    "parse_user_lines",
    "per_date_hash",
    "result_hash",
    "scalar_user_lines",
    "lines_in_part",
    "user_id_of_line",
    "user_line",
    "user_shard",
]

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

    def add_lines(self, lines: list[bytes]) -> None:
        """:meth:`add_line` of many lines in one C-level pass (the same total)."""
        self.total += sum(map(_line_hash, map(_USER_DOMAIN.__add__, lines)))
        self.count += len(lines)

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
    return hydrate_per_user_hashed(shards)[0]


def hydrate_per_user_hashed(shards: Iterable[bytes]) -> tuple[dict[str, Any], PerUserHash]:
    """A per_user result as a mapping, and the hash of its lines (to check against its
    record): a shard's lines parsed with one decoder call and hashed in one pass."""
    result: dict[str, Any] = {}
    hasher = PerUserHash()
    for lines in iter_user_line_batches(shards):
        result.update(parse_user_lines(lines))
        hasher.add_lines(lines)
    return result, hasher


def hydrate_per_date(shards: Iterable[bytes]) -> Any:
    return loads(b"".join(inflate_shard(shard) for shard in shards))
