"""Checksums of committed results, and the checks that find a damaged cell.

Every commit stores, in the record's ``checksums`` field, the xxh3_64 digest of each
compressed shard and a *seal*: an xxh3_128 over the record's result fields (generation,
result hash, kind, shard count, item count) and those digests. Two checks follow:

* :func:`record_problem` (no shard read): the seal still matches the record's result fields,
  so a garbled ``result_hash``, ``generation``, ``shard_count``... is found from the record
  alone;
* :func:`shards_problem`: every shard is present and hashes to its digest (xxh3 over the
  compressed bytes: no decompression). A record written before checksums existed is checked
  by hydrating its shards and recomputing the result hash instead (slower, same verdict).

A record that fails either check is *damaged*: it claims a result the cache does not hold.
Callers treat the cell as missing (it is rebuilt), never as "no result".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import xxhash

from btbuild.storage import codec
from btbuild.storage.records import CellRecord

SCHEME = "c1"
_SEAL_DOMAIN = b"btbuild/checksums/v1\0"
DIGEST_WIDTH = 16  # hex digits of one shard digest (xxh3_64)


def shard_digest(shard: bytes) -> str:
    """The digest of one compressed shard as stored."""
    return xxhash.xxh3_64_hexdigest(shard)


def seal(
    generation: str | None,
    result_hash: str | None,
    kind: str | None,
    shard_count: int,
    item_count: int,
    digests: str,
) -> str:
    text = f"{generation}\n{result_hash}\n{kind}\n{shard_count}\n{item_count}\n{digests}"
    return xxhash.xxh3_128_hexdigest(_SEAL_DOMAIN + text.encode())


def make_checksums(
    generation: str,
    result_hash: str | None,
    kind: str,
    shard_count: int,
    item_count: int,
    digests: Sequence[str],
) -> str:
    """The ``checksums`` value a commit stores: ``c1:<seal>:<digest><digest>...``."""
    joined = "".join(digests)
    return (
        f"{SCHEME}:{seal(generation, result_hash, kind, shard_count, item_count, joined)}:{joined}"
    )


class Sealed(Protocol):
    """The result fields of a record the seal covers (a :class:`CellRecord`, or a backend's
    lighter view of its row)."""

    @property
    def generation(self) -> str | None: ...
    @property
    def result_hash(self) -> str | None: ...
    @property
    def kind(self) -> str | None: ...
    @property
    def shard_count(self) -> int: ...
    @property
    def item_count(self) -> int: ...
    @property
    def checksums(self) -> str | None: ...


def record_problem(record: Sealed) -> str | None:
    """Why the record's result fields cannot be trusted, or None. Only for records that claim
    a result (``has_result``); a legacy record (no checksums) passes (its shards are checked
    in full by :func:`shards_problem`)."""
    return fields_problem(
        record.generation,
        record.result_hash,
        record.kind,
        record.shard_count,
        record.item_count,
        record.checksums,
    )


def fields_problem(
    generation: str | None,
    result_hash: str | None,
    kind: str | None,
    shard_count: int,
    item_count: int,
    checksums: str | None,
) -> str | None:
    """:func:`record_problem` on the bare fields (backends checking in bulk pass columns)."""
    if checksums is None:
        return None
    scheme, _, rest = checksums.partition(":")
    sealed, _, digests = rest.partition(":")
    if scheme != SCHEME or len(digests) != DIGEST_WIDTH * shard_count:
        return "its record's checksums do not fit its shard count"
    if seal(generation, result_hash, kind, shard_count, item_count, digests) != sealed:
        return "its record does not match its seal (result hash, generation or counts changed)"
    return None


def digests_of(record: Sealed) -> list[str] | None:
    """The per-shard digests of a record, or None for a legacy record."""
    if record.checksums is None:
        return None
    digests = record.checksums.rpartition(":")[2]
    return [digests[i : i + DIGEST_WIDTH] for i in range(0, len(digests), DIGEST_WIDTH)]


def shards_problem(record: CellRecord, shards: Sequence[bytes | None]) -> str | None:
    """Why the shards do not hold the record's result, or None when they do."""
    count = record.shard_count
    missing = [index for index, shard in enumerate(shards) if shard is None]
    if missing or len(shards) != count:
        first = missing[0] if missing else len(shards)
        return f"shard {first} of {count} is missing"
    digests = digests_of(record)
    if digests is not None:
        return digests_problem(digests, shards)
    try:
        hydrate_verified(record, shards)  # type: ignore[arg-type]  # no shard is None (returned above)
    except ValueError as exc:
        return f"its shards do not hold its result ({exc})"
    return None


def digests_problem(digests: Sequence[str], shards: Sequence[bytes | None]) -> str | None:
    """Why ``shards`` are not the ones the per-shard ``digests`` name, or None when they are."""
    count = len(digests)
    if len(shards) != count or None in shards:
        first = next((i for i, shard in enumerate(shards) if shard is None), len(shards))
        return f"shard {first} of {count} is missing"
    for index, (shard, digest) in enumerate(zip(shards, digests, strict=True)):
        if shard_digest(shard) != digest:  # type: ignore[arg-type]  # no shard is None (above)
            return f"shard {index} of {count} does not match its checksum"
    return None


def hydrate_verified(record: CellRecord, shards: Sequence[bytes]) -> Any:
    """Hydrate shards and check them against the record; ValueError when they disagree."""
    if record.kind == "per_date":
        data = b"".join(codec.inflate_shard(shard) for shard in shards)
        if codec.per_date_hash(data) != record.result_hash:
            raise ValueError("result hash mismatch")
        return codec.loads(data)
    if record.kind != "per_user":
        raise ValueError(f"unknown result kind {record.kind!r}")
    # a shard's lines parsed with one decoder call and hashed in one pass
    result, hasher = codec.hydrate_per_user_hashed(shards)
    if hasher.count != record.item_count or hasher.hexdigest() != record.result_hash:
        raise ValueError("result hash mismatch")
    return result
