"""The Firestore backend: the shared action cache of a team or a fleet of workers.

Layout under the collection prefix (``[storage] prefix``, default ``btbuild/<workspace>``;
an even number of path segments names a document whose sub-collections hold the cache, an odd
number is used as a name prefix: ``myteam`` -> collections ``myteam_cells``, ...):

* ``cells/{target}__{date}``: one document per cell. ``data`` holds the whole
  :class:`CellRecord` as a JSON array (as in SQLite: one value to decode per record, and no
  Firestore map-key restrictions on dependency labels); ``target`` and ``date`` are copied
  out for queries and ``summary`` (derived from the record, checked against it by every
  build's integrity check) for the no-op analysis. Documents of older versions also hold
  copies of other fields: nothing reads them.
* ``shards/{target}__{date}__{generation}__{index}``: one zlib shard (<= 900,000 bytes, under
  the 1 MiB document limit) in ``data``, with ``target``, ``date``, ``generation``, ``idx``.
* ``runs``, ``sim_hashes``, ``equivalences``: the run log and the registries.

Every read-modify-write of a cell (acquire, renew, commit, finish, release, put_cell_status)
is a Firestore transaction on its document using the pure transitions of ``records.py``.
Shards are written (batched, <= 500 writes and < 9 MB per batch) before the commit
transaction writes the cell document: that single document write is the moment a result
becomes visible. Older generations are deleted after it, in batches. Batched reads use
``get_all``. See docs/storage.md and docs/deploy.md.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

from btbuild.errors import CloudSetupError, ConfigError, LeaseLost, StorageError
from btbuild.storage import records as rec
from btbuild.storage.base import (
    Backend,
    CellSummary,
    _now,
    check_cell_key,
    check_deps,
    check_put_status,
    new_generation,
)
from btbuild.storage.records import CellRecord, Equivalence, Lease, RunRecord

BATCH_WRITES = 500  # Firestore's limit of writes in one batch
BATCH_BYTES = 9_000_000  # stay under the 10 MiB request limit
READ_CHUNK = 500  # document references per get_all call
QUERY_THREADS = 8  # summary queries in flight at once (one per target)
TRANSACTION_ATTEMPTS = 25  # contention retries of one transaction (many workers, one cell)
DEFAULT_PROJECT = "btbuild-local"
_SEGMENT = re.compile(r"[A-Za-z0-9_.\-]+\Z")

T = TypeVar("T")


def _firestore() -> Any:
    try:
        from google.cloud import firestore
    except ImportError:  # pragma: no cover - the dependency is declared in pyproject
        raise StorageError(
            "[storage] backend = 'firestore' needs google-cloud-firestore: pip install google-cloud-firestore"
        ) from None
    return firestore


def check_prefix(prefix: str) -> list[str]:
    """The prefix's path segments; :class:`ConfigError` if it cannot name Firestore paths."""
    parts = prefix.split("/") if isinstance(prefix, str) else []
    if not parts or not all(
        _SEGMENT.match(part)
        and part not in (".", "..")
        and not (part.startswith("__") and part.endswith("__"))
        for part in parts
    ):
        raise ConfigError(
            f"[storage] prefix = {prefix!r} is not a Firestore path; expected segments of letters, digits, '_', '-', '.' "
            "separated by '/', e.g. 'btbuild/demo'"
        )
    return parts


def _cell_id(target: str, date: str) -> str:
    return f"{target}__{date}"


def _split_cell_id(cell_id: str) -> tuple[str, str]:
    target, _, date = cell_id.rpartition("__")  # dates hold no "__"; target names may
    return target, date


def _shard_id(target: str, date: str, generation: str, index: int) -> str:
    return f"{target}__{date}__{generation}__{index}"


def summary_of(record: CellRecord) -> CellSummary:
    """What the planner reads of a cell: (status, composite_hash, result_hash, generation,
    category)."""
    return (
        record.status,
        record.composite_hash,
        record.result_hash,
        record.generation,
        record.category,
    )


def _record_fields(record: CellRecord) -> dict[str, Any]:
    """The cell document. ``data`` is the record; ``target`` and ``date`` are the query keys
    (a garbled one only drops the document out of a query: a miss, rebuilt); ``summary`` is
    derived from the record, and every build's :meth:`Backend.check_results` compares it with
    the record, so a garbled summary is found and repaired. No other copy of a record field
    is written: nothing could check it, so nothing may trust it."""
    return {
        "target": record.target,
        "date": record.date,
        "data": json.dumps(rec.cell_to_row(record), separators=(",", ":"), ensure_ascii=False),
        # packed in one string: a no-op analysis decodes one field per cell
        "summary": json.dumps(summary_of(record), separators=(",", ":")),
    }


def _packed_summary(snapshot: Any) -> CellSummary | None:
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
    return (values[0], values[1], values[2], values[3], values[4])


def _record_of(snapshot: Any) -> CellRecord | None:
    """The record in a document snapshot; None when missing or unreadable (a miss)."""
    if snapshot is None or not snapshot.exists:
        return None
    try:
        data = snapshot.get("data")
        return rec.cell_from_row(json.loads(data)) if isinstance(data, str) else None
    except (KeyError, ValueError, TypeError):
        return None


def check_credentials(service: str, emulator_variable: str) -> None:
    """Raise :class:`CloudSetupError` (one line naming the fix) when neither the emulator
    variable nor Application Default Credentials are set, instead of letting the client
    library fail later with a ``DefaultCredentialsError`` traceback."""
    if os.environ.get(emulator_variable):
        return
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError:
        raise CloudSetupError(
            f"{service}: no Google Cloud credentials: run `gcloud auth application-default login` "
            "(or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file), "
            f"or set {emulator_variable} to use the emulator"
        ) from None


class FirestoreBackend(Backend):
    """Cache in Firestore (``FIRESTORE_EMULATOR_HOST`` points it at the emulator).

    ``project`` defaults to ``$GOOGLE_CLOUD_PROJECT`` (or a local name under the emulator);
    ``prefix`` is the collection prefix every document lives under.
    """

    def __init__(
        self, project: str | None = None, prefix: str = "btbuild/default", client: Any = None
    ) -> None:
        self.prefix = prefix
        self._parts = check_prefix(prefix)
        firestore = _firestore()
        self._fs = firestore
        project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
        if project is None and os.environ.get("FIRESTORE_EMULATOR_HOST"):
            project = DEFAULT_PROJECT
        if client is None:
            check_credentials("firestore", "FIRESTORE_EMULATOR_HOST")
            try:
                client = firestore.Client(project=project)
            except Exception as exc:  # google.auth / api_core raise many kinds: one line
                if project is None:
                    raise CloudSetupError(
                        f"firestore: no Google Cloud project for prefix {prefix!r}: set [storage] project "
                        "in BUILD.toml or GOOGLE_CLOUD_PROJECT (or FIRESTORE_EMULATOR_HOST for the emulator)"
                    ) from None
                raise StorageError(
                    f"cannot open Firestore (project {project!r}, prefix {prefix!r}): {type(exc).__name__}: {exc}"
                ) from None
        self.project = project or client.project
        self.client = client
        self.cells = self.collection("cells")
        self.shards = self.collection("shards")
        self.runs_col = self.collection("runs")
        self.sims = self.collection("sim_hashes")
        self.ledger = self.collection("equivalences")

    def collection(self, name: str) -> Any:
        """A collection under this backend's prefix (the Pub/Sub executor keeps its run documents there)."""
        parts = self._parts
        if len(parts) % 2 == 0:
            return self.client.collection(*parts, name)
        return self.client.collection(*parts[:-1], f"{parts[-1]}_{name}")

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        """Turn Firestore and transport errors into one-line StorageErrors."""
        from google.api_core import exceptions as api

        try:
            yield
        except (LeaseLost, StorageError):
            raise
        except (api.GoogleAPIError, OSError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if isinstance(exc, api.FailedPrecondition) and "index" in message:
                raise CloudSetupError(
                    f"firestore {self.project}/{self.prefix}: cannot {what}: an index is missing: "
                    "create the indexes once with `btbuild deploy` (see docs/deploy.md)"
                ) from None
            raise StorageError(
                f"firestore {self.project}/{self.prefix}: cannot {what}: {message}"
            ) from None

    def _transact(self, what: str, body: Callable[[Any], T]) -> T:
        """Run ``body(transaction)`` in one Firestore transaction (retried on contention)."""
        with self._calling(what):
            transaction = self.client.transaction(max_attempts=TRANSACTION_ATTEMPTS)
            return self._fs.transactional(body)(transaction)

    def _read(self, transaction: Any, target: str, date: str) -> CellRecord | None:
        ref = self.cells.document(_cell_id(target, date))
        return _record_of(ref.get(transaction=transaction))

    def _save(self, transaction: Any, record: CellRecord) -> None:
        transaction.set(
            self.cells.document(_cell_id(record.target, record.date)), _record_fields(record)
        )

    def _write_batches(self, what: str, writes: Iterable[tuple[str, Any, Any]]) -> int:
        """Apply ("set"|"delete", ref, data) writes in batches of <= 500 and < 9 MB."""
        count = 0
        with self._calling(what):
            batch, ops, size = self.client.batch(), 0, 0
            for op, ref, data in writes:
                weight = (
                    len(data["data"])
                    if isinstance(data, dict) and isinstance(data.get("data"), bytes)
                    else 1024
                )
                if ops and (ops >= BATCH_WRITES or size + weight > BATCH_BYTES):
                    batch.commit()
                    batch, ops, size = self.client.batch(), 0, 0
                if op == "set":
                    batch.set(ref, data)
                else:
                    batch.delete(ref)
                ops, size, count = ops + 1, size + weight, count + 1
            if ops:
                batch.commit()
        return count

    def _delete_refs(self, what: str, refs: Iterable[Any]) -> int:
        return self._write_batches(what, (("delete", ref, None) for ref in refs))

    # ------------------------------------------------------------------ records

    def get_cells(
        self, targets: Iterable[str], dates: Iterable[str]
    ) -> dict[tuple[str, str], CellRecord]:
        date_list = list(dict.fromkeys(dates))
        refs = [
            self.cells.document(_cell_id(t, d))
            for t in dict.fromkeys(targets)
            for d in date_list
            if "/" not in t
        ]
        found: dict[tuple[str, str], CellRecord] = {}
        with self._calling("read cell records"):
            for start in range(0, len(refs), READ_CHUNK):
                for snapshot in self.client.get_all(
                    refs[start : start + READ_CHUNK], field_paths=["data"]
                ):
                    record = _record_of(snapshot)
                    if record is not None and snapshot.id == _cell_id(record.target, record.date):
                        found[(record.target, record.date)] = record
        return found

    def get_cell_summaries(
        self, targets: Iterable[str], dates: Iterable[str]
    ) -> dict[tuple[str, str], CellSummary]:
        """The summary fields only (no `data` transferred or decoded): one query per target
        over the date range (``target ==``, ``date`` between the first and last date; the
        composite index ``btbuild deploy`` creates), the queries in flight together (a round
        trip each, so their latencies overlap). Documents without the summary fields fall
        back to a full read."""
        date_set = set(dates)
        names = [target for target in dict.fromkeys(targets) if "/" not in target]
        if not date_set or not names:
            return {}
        low, high = min(date_set), max(date_set)
        found: dict[tuple[str, str], CellSummary] = {}
        legacy: list[str] = []
        with ThreadPoolExecutor(max_workers=min(QUERY_THREADS, len(names))) as pool:
            for snapshots in pool.map(lambda name: self._summary_query(name, low, high), names):
                for snapshot in snapshots:
                    target, date = _split_cell_id(snapshot.id)
                    summary = _packed_summary(snapshot)
                    if summary is None:
                        legacy.append(target)
                    elif date in date_set:
                        found[(target, date)] = summary
        if legacy:  # written before the packed field (or it is unreadable): the record
            records = self.get_cells(sorted(set(legacy)), sorted(date_set))
            found.update((key, summary_of(record)) for key, record in records.items())
        return found

    def _summary_query(self, target: str, low: str, high: str) -> list[Any]:
        field = self._fs.FieldFilter
        query = (
            self.cells.where(filter=field("target", "==", target))
            .where(filter=field("date", ">=", low))
            .where(filter=field("date", "<=", high))
            .select(["summary"])
        )
        with self._calling(f"read cell summaries of {target}"):
            return list(query.stream())

    # ------------------------------------------------------------------ indexes

    def index_specs(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """(collection group, [(field, ASCENDING|DESCENDING)]) of every composite index the
        queries need: the summaries of a target over a date range, a target's run log."""
        return [
            (self.cells.id, [("target", "ASCENDING"), ("date", "ASCENDING")]),
            (self.runs_col.id, [("target", "ASCENDING"), ("started", "DESCENDING")]),
        ]

    def unindexed_fields(self) -> list[tuple[str, str]]:
        """(collection group, field) of the big blobs that are never queried: exempt."""
        return [(self.shards.id, "data"), (self.cells.id, "data")]

    def index_commands(self) -> list[str]:
        """The indexes as `gcloud` commands."""
        p = f"--project={self.project}"
        lines = []
        for group, fields in self.index_specs():
            configs = " ".join(
                f"--field-config=field-path={name},order={order.lower()}" for name, order in fields
            )
            lines.append(
                f"gcloud firestore indexes composite create {p} --collection-group={group} {configs}"
            )
        for group, name in self.unindexed_fields():
            lines.append(
                f"gcloud firestore indexes fields update {name} {p} --collection-group={group} --disable-indexes"
            )
        return lines

    def create_indexes(self) -> list[str]:
        """Create the composite indexes and exemptions (``btbuild deploy``; needs
        roles/datastore.indexAdmin). One line per index; the emulator needs none."""
        if os.environ.get("FIRESTORE_EMULATOR_HOST"):
            return ["skipped firestore indexes (the emulator needs none)"]
        from google.api_core import exceptions as api
        from google.cloud import firestore_admin_v1 as admin

        client = admin.FirestoreAdminClient()
        database = f"projects/{self.project}/databases/(default)"
        lines = []
        try:
            for group, fields in self.index_specs():
                index = admin.Index(
                    query_scope=admin.Index.QueryScope.COLLECTION,
                    fields=[
                        admin.Index.IndexField(
                            field_path=name, order=getattr(admin.Index.IndexField.Order, order)
                        )
                        for name, order in fields
                    ],
                )
                what = f"index {group}({', '.join(name for name, _ in fields)})"
                try:
                    client.create_index(parent=f"{database}/collectionGroups/{group}", index=index)
                    lines.append(f"created {what} (Firestore builds it in the background)")
                except api.AlreadyExists:
                    lines.append(f"exists  {what}")
            for group, name in self.unindexed_fields():
                client.update_field(
                    field=admin.Field(
                        name=f"{database}/collectionGroups/{group}/fields/{name}",
                        index_config=admin.Field.IndexConfig(indexes=[]),
                    )
                )
                lines.append(f"exempted {group}.{name} from indexing")
        except api.PermissionDenied as exc:
            raise CloudSetupError(
                f"firestore {self.project}: btbuild deploy may not create indexes "
                f"({str(exc).splitlines()[0]}): run it as an account with roles/datastore.indexAdmin"
            ) from None
        except api.GoogleAPIError as exc:
            raise StorageError(
                f"firestore {self.project}: cannot create indexes: {str(exc).splitlines()[0]}"
            ) from None
        return lines

    def put_cells(self, records: Iterable[CellRecord]) -> int:
        def writes() -> Iterator[tuple[str, Any, Any]]:
            for record in records:
                check_cell_key(record.target, record.date)
                yield (
                    "set",
                    self.cells.document(_cell_id(record.target, record.date)),
                    _record_fields(record),
                )

        return self._write_batches("write cell records", writes())

    def put_cell_status(
        self, target: str, date: str, status: str, *, now: float | None = None, **changes: Any
    ) -> CellRecord | None:
        when = _now(now)

        def body(transaction: Any) -> CellRecord | None:
            previous = self._read(transaction, target, date)
            checked = check_put_status(target, date, status, changes, previous)
            if previous is not None and previous.is_leased(when):
                return None
            record = rec.status_put(previous, target, date, status, checked, when)
            self._save(transaction, record)
            return record

        check_cell_key(target, date)
        return self._transact(f"record {status} for {target} on {date}", body)

    # ------------------------------------------------------------------ leases

    def acquire(
        self,
        target: str,
        date: str,
        owner: str,
        lease_seconds: float,
        now: float | None = None,
        *,
        dead_owners: Collection[str] = (),
    ) -> Lease | None:
        check_cell_key(target, date)
        when = _now(now)
        generation = new_generation()

        def body(transaction: Any) -> Lease | None:
            taken = rec.leased(
                self._read(transaction, target, date),
                target,
                date,
                owner,
                generation,
                lease_seconds,
                when,
                dead_owners,
            )
            if taken is None:
                return None
            self._save(transaction, taken[0])
            return taken[1]

        return self._transact(f"lease {target} on {date}", body)

    def renew(self, lease: Lease, now: float | None = None) -> Lease:
        def body(transaction: Any) -> Lease:
            current = self._read(transaction, lease.target, lease.date)
            if current is None or not rec.holds(current, lease):
                raise LeaseLost(
                    f"lease on {lease.target} for {lease.date} was taken over by another builder"
                )
            record, renewed = rec.renewed(current, lease, _now(now))
            self._save(transaction, record)
            return renewed

        return self._transact(f"renew the lease on {lease.target} for {lease.date}", body)

    def release(self, lease: Lease, now: float | None = None) -> None:
        def body(transaction: Any) -> None:
            current = self._read(transaction, lease.target, lease.date)
            if current is not None and rec.holds(current, lease):
                restored = rec.released(current, lease, _now(now))
                ref = self.cells.document(_cell_id(lease.target, lease.date))
                if restored is None:
                    transaction.delete(ref)
                else:
                    self._save(transaction, restored)

        self._transact(f"release {lease.target} on {lease.date}", body)
        self._delete_generation(lease.target, lease.date, lease.generation)

    def _finish(
        self, lease: Lease, status: str, error: str | None, now: float
    ) -> CellRecord | None:
        self._delete_generation(lease.target, lease.date, lease.generation)

        def body(transaction: Any) -> CellRecord | None:
            current = self._read(transaction, lease.target, lease.date)
            if current is None or not rec.holds(current, lease):
                return None
            record = rec.finished(current, status, error, now)
            self._save(transaction, record)
            return record

        return self._transact(f"record {status} for {lease.target} on {lease.date}", body)

    def _commit(
        self,
        lease: Lease,
        result: Mapping[str, Any],
        now: float,
        expect_deps: Mapping[tuple[str, str], str] | None = None,
    ) -> CellRecord:
        def body(transaction: Any) -> CellRecord:
            current = self._read(transaction, lease.target, lease.date)
            if current is None or not rec.holds(current, lease):
                raise LeaseLost(
                    f"lease on {lease.target} for {lease.date} was taken over by another builder; its result was not committed"
                )
            if expect_deps:  # read in the transaction: a dep written meanwhile retries it
                found = {dep: self._read(transaction, *dep) for dep in expect_deps}
                check_deps(lease, rec.moved_deps(expect_deps, found))
            record = rec.committed(current, lease, result, now)
            self._save(transaction, record)
            return record

        record = self._transact(f"commit {lease.target} on {lease.date}", body)
        stale = [
            ref
            for ref, generation in self._shards_of(lease.target, lease.date)
            if generation != lease.generation
        ]
        self._delete_refs(f"delete old result shards of {lease.target} on {lease.date}", stale)
        return record

    # ------------------------------------------------------------------ shards

    def _shards_of(self, target: str, date: str) -> list[tuple[Any, str]]:
        """(reference, generation) of every shard of a cell."""
        query = (
            self.shards.where(filter=self._fs.FieldFilter("target", "==", target))
            .where(filter=self._fs.FieldFilter("date", "==", date))
            .select(["generation"])
        )
        with self._calling(f"list result shards of {target} on {date}"):
            return [(snap.reference, snap.get("generation")) for snap in query.stream()]

    def _write_shards(
        self, target: str, date: str, generation: str, shards: Mapping[int, bytes]
    ) -> None:
        self._write_batches(
            f"write result shards of {target} on {date}",
            (
                (
                    "set",
                    self.shards.document(_shard_id(target, date, generation, index)),
                    {
                        "target": target,
                        "date": date,
                        "generation": generation,
                        "idx": index,
                        "data": data,
                    },
                )
                for index, data in shards.items()
            ),
        )

    def _read_shards(
        self, target: str, date: str, generation: str, indices: range
    ) -> list[bytes | None]:
        if not indices:
            return []
        refs = [
            self.shards.document(_shard_id(target, date, generation, index)) for index in indices
        ]
        stored: dict[str, bytes] = {}
        with self._calling(f"read result shards of {target} on {date}"):
            for start in range(0, len(refs), 8):  # <= 8 shards (7 MB) per response
                for snapshot in self.client.get_all(refs[start : start + 8], field_paths=["data"]):
                    if snapshot.exists:
                        data = snapshot.to_dict().get("data")
                        if isinstance(data, bytes):
                            stored[snapshot.id] = data
        return [stored.get(ref.id) for ref in refs]

    def _delete_generation(self, target: str, date: str, generation: str) -> None:
        refs = [ref for ref, found in self._shards_of(target, date) if found == generation]
        self._delete_refs(f"delete result shards of {target} on {date}", refs)

    def collect_garbage(self, now: float | None = None) -> int:
        with self._calling("list result shards"):
            listed = [
                (snap.reference, snap.get("target"), snap.get("date"), snap.get("generation"))
                for snap in self.shards.select(["target", "date", "generation"]).stream()
            ]
        keys = {(t, d) for _, t, d, _ in listed if isinstance(t, str) and isinstance(d, str)}
        records: dict[tuple[str, str], CellRecord] = {}
        by_target: dict[str, set[str]] = {}
        for target, date in keys:
            by_target.setdefault(target, set()).add(date)
        for target, dates in by_target.items():
            records.update(self.get_cells([target], dates))
        dead = []
        for ref, target, date, generation in listed:
            record = records.get((target, date))
            keep = record is not None and generation in (
                record.generation,
                record.lease_generation if record.status == rec.RUNNING else None,
            )
            if not keep:
                dead.append(ref)
        return self._delete_refs("collect garbage", dead)

    def forget_result(
        self, target: str, date: str, *, generation: str | None = None, now: float | None = None
    ) -> bool:
        when = _now(now)

        def body(transaction: Any) -> bool:
            current = self._read(transaction, target, date)
            if current is not None and (
                current.is_leased(when)
                or (generation is not None and current.generation != generation)
            ):
                return False
            transaction.delete(self.cells.document(_cell_id(target, date)))
            return True

        if not self._transact(f"forget the damaged result of {target} on {date}", body):
            return False
        refs = [ref for ref, _generation in self._shards_of(target, date)]
        self._delete_refs(f"delete the damaged result shards of {target} on {date}", refs)
        return True

    # ------------------------------------------------------------------ targets

    def _cells_where_target(self, target: str) -> list[tuple[Any, CellRecord | None, Any]]:
        query = self.cells.where(filter=self._fs.FieldFilter("target", "==", target)).select(
            ["date", "data"]
        )
        with self._calling(f"list cells of {target}"):
            return [(snap.reference, _record_of(snap), snap.get("date")) for snap in query.stream()]

    def delete_target(self, target: str) -> int:
        cells = self._cells_where_target(target)
        with self._calling(f"list result shards of {target}"):
            shard_refs = [
                snap.reference
                for snap in self.shards.where(filter=self._fs.FieldFilter("target", "==", target))
                .select([])
                .stream()
            ]
        self._delete_refs(f"delete target {target}", [ref for ref, _, _ in cells])
        self._delete_refs(f"delete result shards of {target}", shard_refs)
        return len(cells)

    def migrate_category(self, target: str, new_package: str) -> int:
        stale = [
            (ref, date)
            for ref, record, date in self._cells_where_target(target)
            if record is not None and record.category not in (None, new_package)
        ]
        self._delete_refs(
            f"migrate target {target} to package {new_package}", [ref for ref, _ in stale]
        )
        for _, date in stale:
            self._delete_refs(
                f"delete result shards of {target} on {date}",
                [ref for ref, _ in self._shards_of(target, date)],
            )
        return len(stale)

    # ------------------------------------------------------------------ run log, SimHash

    def append_run(self, run: RunRecord) -> None:
        # several cells of one build share a run id: the document id keeps them apart
        doc_id = quote(f"{run.run_id}__{run.target}__{run.date}", safe="")
        with self._calling(f"log run {run.run_id}"):
            self.runs_col.document(doc_id).set(
                {
                    "target": run.target,
                    "started": run.started,
                    "data": json.dumps(run.to_dict(), sort_keys=True),
                }
            )

    def runs(self, target: str | None = None, limit: int = 100) -> list[RunRecord]:
        query = self.runs_col
        if target is not None:
            query = query.where(filter=self._fs.FieldFilter("target", "==", target))
        query = query.order_by("started", direction=self._fs.Query.DESCENDING).limit(limit)
        found = []
        with self._calling("read the run log"):
            for snap in query.stream():
                try:
                    found.append(RunRecord.from_dict(json.loads(snap.get("data"))))
                except (KeyError, ValueError, TypeError):
                    continue  # corrupt entry: skipped
        return found

    def _sim_ref(self, code_hash: str, fabricator_version: str) -> Any:
        return self.sims.document(quote(f"{code_hash}__{fabricator_version}", safe=""))

    def get_sim_hash(self, code_hash: str, fabricator_version: str) -> str | None:
        with self._calling("read the SimHash registry"):
            snap = self._sim_ref(code_hash, fabricator_version).get()
        value = snap.to_dict().get("sim_hash") if snap.exists else None
        return value if isinstance(value, str) else None

    def put_sim_hash(self, code_hash: str, fabricator_version: str, sim_hash: str) -> None:
        with self._calling("write the SimHash registry"):
            self._sim_ref(code_hash, fabricator_version).set(
                {
                    "code_hash": code_hash,
                    "fabricator_version": fabricator_version,
                    "sim_hash": sim_hash,
                }
            )

    def record_equivalence(
        self,
        target: str,
        old_code_hash: str,
        new_code_hash: str,
        sim_hash: str,
        date: str,
        now: float | None = None,
    ) -> Equivalence:
        entry = Equivalence(target, old_code_hash, new_code_hash, sim_hash, date, _now(now))
        with self._calling("write the equivalence ledger"):
            self.ledger.document().set(dict(entry.to_dict(), written_ns=time.time_ns()))
        return entry

    def equivalences(self, target: str | None = None) -> list[Equivalence]:
        query = self.ledger
        if target is not None:
            query = query.where(filter=self._fs.FieldFilter("target", "==", target))
        entries = []
        with self._calling("read the equivalence ledger"):
            for snap in query.stream():
                data = snap.to_dict()
                try:
                    entry = Equivalence(
                        str(data["target"]),
                        str(data["old_code_hash"]),
                        str(data["new_code_hash"]),
                        str(data["sim_hash"]),
                        str(data["date"]),
                        float(data["recorded_at"]),
                    )
                except (KeyError, TypeError, ValueError):
                    continue
                entries.append((entry.recorded_at, int(data.get("written_ns", 0)), entry))
        return [entry for _, _, entry in sorted(entries, key=lambda item: item[:2])]

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()
