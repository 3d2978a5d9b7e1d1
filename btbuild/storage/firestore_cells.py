"""Firestore cell documents: their layout, and the bulk reads of a no-op analysis.

* ``cells/{target}__{date}``: ``data`` is the whole :class:`CellRecord` as a JSON array (one
  value to decode per record, and no Firestore map-key restrictions on dependency labels);
  ``target`` and ``date`` are the query keys; ``summary`` packs what the planner reads
  (derived from the record; :func:`check` compares the two on every build). No other copy
  of a record field is written: nothing could check it, so nothing may trust it. (Documents
  of older versions also hold separate copies; nothing reads them.) A committed result that
  is one shard of at most ``INLINE_LIMIT`` bytes is kept here too: ``inline`` (the shard)
  and ``inline_gen`` (its generation; it counts only while the record's ``generation`` is
  the same), written by the commit's own transaction (:class:`CellDocTransaction`).
* ``shards/{target}__{date}__{generation}__{index}``: one zlib shard in ``data``, with
  ``target``, ``date``, ``generation``, ``idx`` (every other result).

A no-op analysis (:func:`read_checked`) reads one stream of the plan's cell documents
(summary, record, inline shard) over the date range, then the shard documents of only the
targets whose results are not inline. A plan of a few targets queries per target (composite
indexes ``(target, date)``); a larger one queries the date range once and leaves other
targets out (each document is one streamed response, so one stream beats a round trip per
target). The responses are read raw (btbuild/storage/firestore_query.py). A build sends the
queries when it is set up (:func:`start_read_checked`) and reads them in its first plan, so
the server answers while the build hashes its code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from btbuild.storage import firestore_query
from btbuild.storage import records as rec
from btbuild.storage.firestore_query import Fields
from btbuild.storage.outbox import PendingAlert
from btbuild.storage.primitives import summary_of
from btbuild.storage.records import CellRecord
from btbuild.vocabulary import CellSummary

if TYPE_CHECKING:
    from btbuild.storage.firestore import FirestoreBackend

INLINE_LIMIT = 256 * 1024  # a one-shard result up to this size is stored in its cell document
DOCUMENT_ROOM = 900_000  # record and inline shard together stay under Firestore's 1 MiB
PER_TARGET_QUERIES = 4  # more targets than this: one query over the date range instead
CHECKED_FIELDS = ["summary", "data", "inline", "inline_gen"]  # what a no-op analysis reads
_new_summary = tuple.__new__
_decode = msgspec.json.Decoder().decode


def cell_id(target: str, date: str) -> str:
    return f"{target}__{date}"


def split_cell_id(document_id: str) -> tuple[str, str]:
    target, _, date = document_id.rpartition("__")  # dates hold no "__"; target names may
    return target, date


def shard_id(target: str, date: str, generation: str, index: int) -> str:
    return f"{target}__{date}__{generation}__{index}"


def shard_fields(
    target: str, date: str, generation: str, index: int, data: bytes
) -> dict[str, Any]:
    """The shard document of one shard."""
    return {"target": target, "date": date, "generation": generation, "idx": index, "data": data}


def inline_of(fields: Any, generation: str | None) -> bytes | None:
    """The inline shard of a cell document's ``fields`` if it belongs to ``generation``."""
    data = fields.get("inline")
    if generation is None or fields.get("inline_gen") != generation or type(data) is not bytes:
        return None
    return data


def record_fields(record: CellRecord) -> dict[str, Any]:
    """The cell document of a record (see the module docstring)."""
    return {
        "target": record.target,
        "date": record.date,
        "data": json.dumps(rec.cell_to_row(record), separators=(",", ":"), ensure_ascii=False),
        # packed in one string: a no-op analysis decodes one field per cell
        "summary": json.dumps(summary_of(record), separators=(",", ":")),
    }


def _json(text: str) -> Any:
    """``json.loads`` of ``text``, by msgspec (about 3x faster on a record) when it reads it;
    text msgspec refuses (NaN, huge numbers...) is read by ``json.loads`` (ValueError when
    that refuses it too), so the value is always the standard library's."""
    try:
        return _decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


def packed_summary(packed: Any) -> CellSummary | None:
    """The packed ``summary`` field of a cell document; None when missing or malformed."""
    try:
        values = _json(packed) if type(packed) is str else None
    except (ValueError, RecursionError):  # (nested too deep for json.loads)
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
        return record_from(snapshot.get("data"))
    except KeyError:
        return None


def record_from(data: Any) -> CellRecord | None:
    """The record in a cell document's ``data`` field; None when unreadable (a miss)."""
    try:
        return rec.cell_from_row(_json(data)) if isinstance(data, str) else None
    except (ValueError, TypeError, RecursionError):  # (nested too deep for json.loads)
        return None


Started = Callable[[], list[tuple[str, Fields]]]


def start_documents(
    backend: FirestoreBackend, collection: Any, names: list[str], low: str, high: str,
    fields: list[str],
) -> Started:  # fmt: skip
    """Send the queries of the documents of ``names`` dated ``low`` to ``high`` now; the
    returned call reads their raw responses (btbuild/storage/firestore_query.py): one query
    per target (the composite index target, date) for a few targets, all in flight at once,
    else one query over the date range (each document is one streamed response: the targets
    of a whole-workspace plan are read in one stream, not one round trip each). Documents of
    other targets are left out."""
    field = backend._fs.FieldFilter
    dated = collection.where(filter=field("date", ">=", low)).where(
        filter=field("date", "<=", high)
    )
    what = f"read {collection.id} from {low} to {high}"
    if len(names) > PER_TARGET_QUERIES:
        with backend.calling(what):
            whole = firestore_query.Started(backend.client, dated.select(fields), fields)

        def read_whole() -> list[tuple[str, Fields]]:
            wanted = set(names)
            with backend.calling(what):
                found = whole.read()
            return [item for item in found if _target_of(item[0]) in wanted]

        return read_whole
    started = []
    for name in names:
        with backend.calling(f"{what} of {name}"):
            selected = dated.where(filter=field("target", "==", name)).select(fields)
            started.append((name, firestore_query.Started(backend.client, selected, fields)))

    def read_each() -> list[tuple[str, Fields]]:
        found = []
        for name, query in started:
            with backend.calling(f"{what} of {name}"):
                found.extend(query.read())
        return found

    return read_each


def stream_documents(
    backend: FirestoreBackend, collection: Any, names: list[str], low: str, high: str,
    fields: list[str],
) -> list[tuple[str, Fields]]:  # fmt: skip
    """The documents of :func:`start_documents`, read now."""
    return start_documents(backend, collection, names, low, high, fields)()


def _target_of(document_id: str) -> str:
    """The target of a cell (``target__date``) or shard (``target__date__gen__i``) id."""
    parts = document_id.rsplit("__", 3)
    return parts[0] if len(parts) == 4 else split_cell_id(document_id)[0]


def plan_of(targets: Iterable[str], dates: Iterable[str]) -> tuple[list[str], set[str]]:
    """The target names a cell query reads (a name holding ``/`` is no document id) and the
    dates, each once."""
    return [target for target in dict.fromkeys(targets) if "/" not in target], set(dates)


def all_shard_generations(backend: FirestoreBackend) -> dict[tuple[str, str], set[str]]:
    """(target, date) -> the generations of the shard documents stored (every target)."""
    found: dict[tuple[str, str], set[str]] = {}
    with backend.calling("list result shards"):
        for snap in backend.shards.select(["target", "date", "generation"]).stream():
            target, date = snap.get("target"), snap.get("date")
            generation = snap.get("generation")
            if all(isinstance(value, str) for value in (target, date, generation)):
                found.setdefault((target, date), set()).add(generation)
    return found


def part_cells(backend: FirestoreBackend, targets: Iterable[str]) -> list[tuple[str, str]]:
    """:meth:`Backend.part_cells`: a range of ``target`` (``name~`` up to ``name`` + DEL, the
    character after ``~``) over the cell documents and the shard documents, since a part's
    small result is inline in its cell document (the shared listing sees shard documents
    only)."""
    field = backend._fs.FieldFilter
    found: set[tuple[str, str]] = set()
    for target in targets:
        for collection in (backend.cells, backend.shards):
            query = collection.where(filter=field("target", ">=", f"{target}~"))
            query = query.where(filter=field("target", "<", f"{target}\x7f"))
            with backend.calling(f"list the parts of {target}"):
                listed = firestore_query.documents(
                    backend.client, query.select(["target", "date"]), ["target", "date"]
                )
            for _id, fields in listed:
                name, date = fields["target"], fields["date"]
                if isinstance(name, str) and isinstance(date, str):
                    found.add((name, date))
    return sorted(found)


def summaries(
    backend: FirestoreBackend, targets: Iterable[str], dates: Iterable[str]
) -> dict[tuple[str, str], CellSummary]:
    """The packed summaries only (no ``data`` transferred or decoded), by :func:`stream_documents`.
    Documents without a readable summary fall back to a full read."""
    names, date_set = plan_of(targets, dates)
    if not date_set or not names:
        return {}
    found: dict[tuple[str, str], CellSummary] = {}
    legacy: set[str] = set()
    for document_id, fields in stream_documents(
        backend, backend.cells, names, min(date_set), max(date_set), ["summary"]
    ):
        target, date = split_cell_id(document_id)
        summary = packed_summary(fields["summary"])
        if summary is None:
            legacy.add(target)
        elif date in date_set:
            found[(target, date)] = summary
    if legacy:  # written before the packed field (or it is unreadable): the record
        records = backend.get_cells(sorted(legacy), sorted(date_set))
        found.update((key, summary_of(record)) for key, record in records.items())
    return found


class CellDocTransaction:
    """Cell reads and writes inside one Firestore transaction (every read before a write).

    Every save writes the whole cell document. A commit of a result that is one small shard
    (:meth:`save_with_shard`) stores it inline (``inline``, with its generation in
    ``inline_gen``), atomically with the record; a later save of the same committed
    generation carries the inline shard it read over, and a save of another generation drops
    it. A save of a cell this transaction did not read (no body of the protocol does that)
    merges, keeping what the document holds."""

    def __init__(self, backend: FirestoreBackend, transaction: Any) -> None:
        self.backend = backend
        self.transaction = transaction
        self._read: dict[tuple[str, str], dict[str, Any]] = {}

    def read(self, target: str, date: str) -> CellRecord | None:
        ref = self.backend.cells.document(cell_id(target, date))
        snapshot = ref.get(transaction=self.transaction)
        self._read[(target, date)] = (snapshot.to_dict() or {}) if snapshot.exists else {}
        return record_of(snapshot)

    def save(self, record: CellRecord) -> None:
        key, generation = (record.target, record.date), record.generation
        fields = record_fields(record)
        if key not in self._read:
            self.transaction.set(self._ref(key), fields, merge=True)
            return
        inline = inline_of(self._read[key], generation)
        if inline is not None:
            fields.update(inline=inline, inline_gen=generation)
        self.transaction.set(self._ref(key), fields)

    def save_with_shard(self, record: CellRecord, shard: bytes) -> None:
        """A commit of a one-shard result: the shard inline in the cell document, or, with
        no room beside the record, a shard document written in the same transaction."""
        key, generation = (record.target, record.date), record.generation or ""
        fields = record_fields(record)
        if len(shard) + len(fields["data"]) <= DOCUMENT_ROOM:
            fields.update(inline=shard, inline_gen=generation)
        else:
            ref = self.backend.shards.document(shard_id(*key, generation, 0))
            self.transaction.set(ref, shard_fields(*key, generation, 0, shard))
        self.transaction.set(self._ref(key), fields)

    def _ref(self, key: tuple[str, str]) -> Any:
        return self.backend.cells.document(cell_id(*key))

    def delete(self, target: str, date: str) -> None:
        self.transaction.delete(self.backend.cells.document(cell_id(target, date)))

    def put_alert(self, alert: PendingAlert) -> None:
        ref = self.backend.outbox.document(quote(alert.key, safe=""))
        self.transaction.set(ref, {"data": alert.to_json()})
