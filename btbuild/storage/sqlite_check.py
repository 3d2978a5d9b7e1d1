"""The SQLite form of :meth:`Backend.check_results`: two range scans instead of a query per cell.

One scan over the plan's records (targets x date range), each joined with the shards of its
committed generation: the result columns (the seal is checked from them without decoding
``data``; ``kind``, inside ``data``, is part of the seal), whether the row passes the checks
every record query applies (known status, sane numbers, ``data`` valid JSON), and each shard,
hashed with xxh3 over the stored bytes (no decompression). Not checked here: the types inside
``data``'s maps (a full read checks them; ``thorough`` adds the full read of every record). Records written before checksums existed (legacy) are checked one at a time
by the shared, slower path.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from btbuild.storage import integrity

if TYPE_CHECKING:
    from btbuild.storage.sqlite import SqliteBackend

_CHUNK = 500


def check_results(
    backend: SqliteBackend, targets: Iterable[str], dates: Iterable[str]
) -> dict[tuple[str, str], str]:
    from btbuild.storage.sqlite import _VALID

    target_list = list(dict.fromkeys(targets))
    date_set = set(dates)
    if not target_list or not date_set:
        return {}
    low, high = min(date_set), max(date_set)
    damaged: dict[tuple[str, str], str] = {}
    legacy: list[tuple[str, str]] = []
    # the joined shards table has a ``data`` column too: name the record's
    readable = re.sub(r"\bdata\b", "c.data", f"CASE WHEN {_VALID} THEN 1 ELSE 0 END")
    kind = "CASE WHEN json_valid(c.data) THEN json_extract(c.data, '$[2]') END"
    for chunk in _chunks(target_list):
        marks = ", ".join("?" * len(chunk))
        sql = (
            "SELECT c.target, c.date, c.generation, c.result_hash, c.shard_count, c.item_count,"
            f" c.checksums, {kind}, {readable}, s.idx, s.data"
            " FROM cells AS c LEFT JOIN shards AS s"
            " ON s.target = c.target AND s.date = c.date AND s.generation = c.generation"
            f" WHERE c.target IN ({marks}) AND c.date BETWEEN ? AND ?"
        )
        with backend._lock:
            try:
                rows = backend._conn.execute(sql, [*chunk, low, high])
                _scan(backend, rows, date_set, damaged, legacy)
            except sqlite3.Error as exc:  # the file's pages damaged: CacheFileDamaged
                raise backend._error("check the stored results", exc) from None
    for key in legacy:
        record = backend.get_cell(*key)
        problem = "its record is unreadable" if record is None else None
        if record is not None:
            shards = backend._read_shards(
                key[0], key[1], record.generation or "", range(record.shard_count)
            )
            problem = integrity.shards_problem(record, shards)
        if problem is not None:
            damaged[key] = problem
    return damaged


def _scan(
    backend: SqliteBackend,
    rows: Iterable[Any],
    date_set: set[str],
    damaged: dict[tuple[str, str], str],
    legacy: list[tuple[str, str]],
) -> None:
    """One pass over (cell, shard) rows, a cell's rows together (the join is driven by the
    cells' primary key): the record once, then each of its shards against its digest."""
    width = integrity.DIGEST_WIDTH
    digest = integrity.shard_digest
    fields_problem = integrity.fields_problem
    key: tuple[str, str] | None = None
    digests, count, seen, skip = "", 0, 0, True

    def close() -> None:
        if key is not None and not skip and seen != count:
            damaged[key] = _missing(backend, key, count)

    for (
        target,
        date,
        generation,
        result_hash,
        shards,
        items,
        checksums,
        kind,
        ok,
        index,
        data,
    ) in rows:
        if (target, date) != key:
            close()
            key, seen, skip = (target, date), 0, True
            if date not in date_set:
                continue
            if not ok:
                damaged[key] = "its record is unreadable"
            elif generation is None:
                continue
            elif checksums is None:
                legacy.append(key)
            else:
                problem = fields_problem(generation, result_hash, kind, shards, items, checksums)
                if problem is not None:
                    damaged[key] = problem
                else:
                    digests, count, skip = checksums.rpartition(":")[2], shards, False
        if skip or index is None:
            continue
        if not isinstance(data, bytes) or not 0 <= index < count:
            continue
        if digest(data) != digests[index * width : (index + 1) * width]:
            damaged[key] = f"shard {index} of {count} does not match its checksum"
            skip = True
            continue
        seen += 1
    close()


def _missing(backend: SqliteBackend, key: tuple[str, str], count: int) -> str:
    record = backend.get_cell(*key)
    if record is None:
        return "its record is unreadable"
    shards = backend._read_shards(key[0], key[1], record.generation or "", range(count))
    first = next((index for index, shard in enumerate(shards) if shard is None), count)
    return f"shard {first} of {count} is missing"


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
