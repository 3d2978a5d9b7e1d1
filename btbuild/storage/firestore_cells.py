"""Firestore cell documents: their layout, and the bulk reads of a no-op analysis.

* ``cells/{target}__{date}``: ``data`` is the whole :class:`CellRecord` as a JSON array (one
  value to decode per record, and no Firestore map-key restrictions on dependency labels);
  ``target`` and ``date`` are the query keys; ``summary`` packs what the planner reads
  (derived from the record; :func:`check` compares the two on every build). No other copy
  of a record field is written: nothing could check it, so nothing may trust it. (Documents
  of older versions also hold separate copies; nothing reads them.)
* ``shards/{target}__{date}__{generation}__{index}``: one zlib shard in ``data``, with
  ``target``, ``date``, ``generation``, ``idx``.

A no-op analysis reads, per target and date range, one query of summaries
(:func:`summaries`) and, for the integrity check (:func:`check`), one query of the cell
documents and one of their shards: a few round trips per target however many dates, all
targets' queries in flight together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from btbuild.storage import integrity
from btbuild.storage import records as rec
from btbuild.storage.primitives import summary_of
from btbuild.storage.records import CellRecord
from btbuild.vocabulary import CellSummary

if TYPE_CHECKING:
    from btbuild.storage.firestore import FirestoreBackend

QUERY_THREADS = 8  # queries in flight at once (one per target)
_new_summary = tuple.__new__
T = TypeVar("T")


def cell_id(target: str, date: str) -> str:
    return f"{target}__{date}"


def split_cell_id(document_id: str) -> tuple[str, str]:
    target, _, date = document_id.rpartition("__")  # dates hold no "__"; target names may
    return target, date


def shard_id(target: str, date: str, generation: str, index: int) -> str:
    return f"{target}__{date}__{generation}__{index}"


def record_fields(record: CellRecord) -> dict[str, Any]:
    """The cell document of a record (see the module docstring)."""
    return {
        "target": record.target,
        "date": record.date,
        "data": json.dumps(rec.cell_to_row(record), separators=(",", ":"), ensure_ascii=False),
        # packed in one string: a no-op analysis decodes one field per cell
        "summary": json.dumps(summary_of(record), separators=(",", ":")),
    }


def packed_summary(snapshot: Any) -> CellSummary | None:
    """The packed ``summary`` field of a cell document; None when missing or malformed."""
    try:
        packed = snapshot.get("summary")
        values = json.loads(packed) if isinstance(packed, str) else None
    except (KeyError, ValueError):
        return None
    if (
        type(values) is not list
        or len(values) != 5
        or values[0] not in rec.STATUSES
        or not all(v is None or type(v) is str for v in values[1:])
    ):
        return None
    return _new_summary(CellSummary, values)


def record_of(snapshot: Any) -> CellRecord | None:
    """The record in a document snapshot; None when missing or unreadable (a miss)."""
    if snapshot is None or not snapshot.exists:
        return None
    try:
        data = snapshot.get("data")
        return rec.cell_from_row(json.loads(data)) if isinstance(data, str) else None
    except (KeyError, ValueError, TypeError):
        return None


def per_target(names: list[str], query: Callable[[str], T]) -> list[T]:
    """``query`` of every target, the round trips in flight together."""
    if len(names) <= 1:
        return [query(name) for name in names]
    with ThreadPoolExecutor(max_workers=min(QUERY_THREADS, len(names))) as pool:
        return list(pool.map(query, names))


def _range_query(
    backend: FirestoreBackend, collection: Any, target: str, low: str, high: str, fields: list[str]
) -> list[Any]:
    field = backend._fs.FieldFilter
    query = (
        collection.where(filter=field("target", "==", target))
        .where(filter=field("date", ">=", low))
        .where(filter=field("date", "<=", high))
        .select(fields)
    )
    with backend.calling(f"read {collection.id} of {target} from {low} to {high}"):
        return list(query.stream())


def _plan(targets: Iterable[str], dates: Iterable[str]) -> tuple[list[str], set[str]]:
    return [target for target in dict.fromkeys(targets) if "/" not in target], set(dates)


def summaries(
    backend: FirestoreBackend, targets: Iterable[str], dates: Iterable[str]
) -> dict[tuple[str, str], CellSummary]:
    """The packed summaries only (no ``data`` transferred or decoded): one query per target
    over the date range (``target ==``, ``date`` between the first and last date; the
    composite index ``btbuild deploy`` creates). Documents without a readable summary fall
    back to a full read."""
    names, date_set = _plan(targets, dates)
    if not date_set or not names:
        return {}
    low, high = min(date_set), max(date_set)
    found: dict[tuple[str, str], CellSummary] = {}
    legacy: set[str] = set()

    def query(name: str) -> list[Any]:
        return _range_query(backend, backend.cells, name, low, high, ["summary"])

    for snapshots in per_target(names, query):
        for snapshot in snapshots:
            target, date = split_cell_id(snapshot.id)
            summary = packed_summary(snapshot)
            if summary is None:
                legacy.add(target)
            elif date in date_set:
                found[(target, date)] = summary
    if legacy:  # written before the packed field (or it is unreadable): the record
        records = backend.get_cells(sorted(legacy), sorted(date_set))
        found.update((key, summary_of(record)) for key, record in records.items())
    return found


def check(
    backend: FirestoreBackend, targets: Iterable[str], dates: Iterable[str]
) -> dict[tuple[str, str], str]:
    """:meth:`Backend.check_results` in two queries per target: its cell documents (summary
    and record) and its shards over the date range. Every check of the shared one is made
    (summary against record, the seal, every shard against its digest); only the damage
    found is confirmed cell by cell."""
    names, date_set = _plan(targets, dates)
    if not date_set or not names:
        return {}
    low, high = min(date_set), max(date_set)

    def query(name: str) -> tuple[list[Any], list[Any]]:
        cells = _range_query(backend, backend.cells, name, low, high, ["summary", "data"])
        if not any(_claims_result(snapshot) for snapshot in cells):
            return cells, []
        fields = ["date", "generation", "idx", "data"]
        return cells, _range_query(backend, backend.shards, name, low, high, fields)

    found: dict[tuple[str, str], str] = {}
    for cells, shards in per_target(names, query):
        stored = _shards_by_cell(shards)
        for snapshot in cells:
            key = split_cell_id(snapshot.id)
            if key[1] in date_set:
                problem = _problem(snapshot, key, stored)
                if problem is not None:
                    found[key] = problem
    return backend._confirmed(found)


def _claims_result(snapshot: Any) -> bool:
    summary = packed_summary(snapshot)
    return summary is None or summary.generation is not None


def _shards_by_cell(shards: list[Any]) -> dict[tuple[str, str], dict[int, bytes]]:
    """(date, generation) -> index -> bytes of the shards a query returned."""
    stored: dict[tuple[str, str], dict[int, bytes]] = {}
    for snapshot in shards:
        fields = snapshot.to_dict() or {}
        date, generation = fields.get("date"), fields.get("generation")
        index, data = fields.get("idx"), fields.get("data")
        if isinstance(index, int) and isinstance(data, bytes):
            stored.setdefault((str(date), str(generation)), {})[index] = data
    return stored


def _problem(
    snapshot: Any, key: tuple[str, str], stored: dict[tuple[str, str], dict[int, bytes]]
) -> str | None:
    record = record_of(snapshot)
    if record is not None and (record.target, record.date) != key:
        record = None
    summary = packed_summary(snapshot)
    if record is None:
        return (
            None
            if summary is not None and summary.generation is None
            else ("its record is unreadable")
        )
    if summary is not None and tuple(summary) != tuple(summary_of(record)):
        return "its summary does not match its record"
    if not record.has_result:
        return None
    problem = integrity.record_problem(record)
    if problem is not None:
        return problem
    shards = stored.get((record.date, record.generation or ""), {})
    return integrity.shards_problem(record, [shards.get(i) for i in range(record.shard_count)])
