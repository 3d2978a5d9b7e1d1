"""The SQLite form of :meth:`Backend.check_results`: two range scans instead of a query per cell.

One scan reads every record of the plan's targets over its date range: its result columns
(the seal is checked from them without decoding ``data``) and whether the row is readable at
all (the same conditions the record queries apply, plus the shape of ``data``). A second scan
reads the shards of the committed generations and hashes each one (xxh3 over the stored bytes:
no decompression). Records written before checksums existed (legacy) are checked one at a time
by the shared, slower path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from btbuild.storage import integrity

if TYPE_CHECKING:
    from btbuild.storage.sqlite import SqliteBackend

_CHUNK = 500
# ``data`` is [code_hash, sim_hash, kind, lease_owner, last_error, components, dep_results,
# root_fingerprints]: the shape every record read relies on, checked in C.
_DATA_SHAPE = (
    "json_valid(data) AND json_type(data) = 'array' AND json_array_length(data) = 8"
    " AND json_type(data, '$[5]') = 'object' AND json_type(data, '$[6]') = 'object'"
    " AND json_type(data, '$[7]') = 'object'"
    " AND coalesce(json_type(data, '$[0]'), 'null') IN ('text', 'null')"
    " AND coalesce(json_type(data, '$[1]'), 'null') IN ('text', 'null')"
    " AND coalesce(json_type(data, '$[3]'), 'null') IN ('text', 'null')"
    " AND coalesce(json_type(data, '$[4]'), 'null') IN ('text', 'null')"
    " AND coalesce(json_extract(data, '$[2]'), 'per_user') IN ('per_user', 'per_date')"
)


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
    expected: dict[tuple[str, str], tuple[str, int]] = {}  # key -> (digests, shard count)
    legacy: list[tuple[str, str]] = []
    readable = f"CASE WHEN {_VALID} AND {_DATA_SHAPE} THEN 1 ELSE 0 END"
    kind = "CASE WHEN json_valid(data) THEN json_extract(data, '$[2]') END"
    for chunk in _chunks(target_list):
        marks = ", ".join("?" * len(chunk))
        rows = backend._query(
            "check cell records",
            f"SELECT target, date, generation, result_hash, shard_count, item_count, checksums,"
            f" {kind}, {readable} FROM cells"
            f" WHERE target IN ({marks}) AND date BETWEEN ? AND ?",
            [*chunk, low, high],
        )
        for target, date, generation, result_hash, shards, items, checksums, kind_, ok in rows:
            key = (target, date)
            if date not in date_set:
                continue
            if not ok:
                damaged[key] = "its record is unreadable"
            elif generation is None:
                continue
            elif checksums is None:
                legacy.append(key)
            else:
                problem = integrity.fields_problem(
                    generation, result_hash, kind_, shards, items, checksums
                )
                if problem is not None:
                    damaged[key] = problem
                else:
                    expected[key] = (checksums.rpartition(":")[2], shards)
    _check_shards(backend, target_list, low, high, expected, damaged)
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


def _check_shards(
    backend: SqliteBackend,
    targets: list[str],
    low: str,
    high: str,
    expected: dict[tuple[str, str], tuple[str, int]],
    damaged: dict[tuple[str, str], str],
) -> None:
    """Hash every shard of the committed generations; report missing and mismatched ones."""
    width = integrity.DIGEST_WIDTH
    seen: dict[tuple[str, str], int] = {}
    digest = integrity.shard_digest
    for chunk in _chunks(targets):
        marks = ", ".join("?" * len(chunk))
        sql = (
            "SELECT s.target, s.date, s.idx, s.data FROM shards AS s JOIN cells AS c"
            " ON c.target = s.target AND c.date = s.date AND c.generation = s.generation"
            f" WHERE c.target IN ({marks}) AND c.date BETWEEN ? AND ?"
        )
        with backend._lock:
            cursor = backend._conn.execute(sql, [*chunk, low, high])
            for target, date, index, data in cursor:
                key = (target, date)
                wanted = expected.get(key)
                if wanted is None or key in damaged:
                    continue
                digests, count = wanted
                if not isinstance(data, bytes) or not 0 <= index < count:
                    continue
                if digest(data) != digests[index * width : (index + 1) * width]:
                    damaged[key] = f"shard {index} of {count} does not match its checksum"
                    continue
                seen[key] = seen.get(key, 0) + 1
    for key, (_digests, count) in expected.items():
        if key not in damaged and seen.get(key, 0) != count:
            damaged[key] = _missing(backend, key, count)


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
