"""The Firestore backend: the shared action cache of a team or a fleet of workers.

Layout under the collection prefix (``[storage] prefix``, default ``btbuild/<workspace>``;
an even number of path segments names a document whose sub-collections hold the cache, an odd
number is used as a name prefix: ``myteam`` -> collections ``myteam_cells``, ...): ``cells``
and ``shards`` (see btbuild/storage/firestore_cells.py), ``runs``, ``sim_hashes``,
``equivalences``; the Pub/Sub executor keeps its run documents beside them
(:class:`~btbuild.storage.documents.RunDocuments`).

Every read-modify-write of a cell (the commit protocol in base.py) is a Firestore transaction
on its document. Shards are written (batched, <= 500 writes and < 9 MB per batch) before the
commit transaction writes the cell document: that single document write is the moment a
result becomes visible. Batched reads use ``get_all``. See docs/storage.md and docs/deploy.md.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from btbuild.errors import CloudSetupError, LeaseLost, StorageError
from btbuild.storage import firestore_cells, firestore_check, firestore_query
from btbuild.storage.base import Backend, CellSummary, CellTransaction, check_cell_key
from btbuild.storage.firestore_admin import (
    DEFAULT_PROJECT,
    FirestoreIndexes,
    _firestore,
    check_credentials,
    check_prefix,
    patiently,
)
from btbuild.storage.firestore_cells import (
    INLINE_LIMIT,
    CellDocTransaction,
    cell_id,
    inline_of,
    record_fields,
    record_of,
    shard_fields,
    shard_id,
)
from btbuild.storage.outbox import PendingAlert
from btbuild.storage.records import CellRecord, Equivalence, RunRecord

__all__ = ["DEFAULT_PROJECT", "FirestoreBackend", "check_credentials", "check_prefix"]

BATCH_WRITES = 500  # Firestore's limit of writes in one batch
BATCH_BYTES = 9_000_000  # stay under the 10 MiB request limit
READ_CHUNK = 500  # document references per get_all call
TRANSACTION_ATTEMPTS = 25  # contention retries of one transaction (many workers, one cell)

T = TypeVar("T")


class FirestoreBackend(FirestoreIndexes, Backend):
    """Cache in Firestore (``FIRESTORE_EMULATOR_HOST`` points it at the emulator).

    ``project`` defaults to ``$GOOGLE_CLOUD_PROJECT`` (or a local name under the emulator);
    ``prefix`` is the collection prefix every document lives under.
    """

    supports_outbox = True
    inline_limit = INLINE_LIMIT  # a one-shard result this small is kept in its cell document

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
        firestore_query.single_threaded_streams(client)  # fast streams
        self.cells = self.collection("cells")
        self.shards = self.collection("shards")
        self.runs_col = self.collection("runs")
        self.sims = self.collection("sim_hashes")
        self.ledger = self.collection("equivalences")
        self.outbox = self.collection("alert_outbox")

    def collection(self, name: str) -> Any:
        """A collection under this backend's prefix (the Pub/Sub executor keeps its run documents there)."""
        parts = self._parts
        if len(parts) % 2 == 0:
            return self.client.collection(*parts, name)
        return self.client.collection(*parts[:-1], f"{parts[-1]}_{name}")

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def calling(self, what: str) -> Iterator[None]:
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

    def transact(self, what: str, body: Callable[[Any], T]) -> T:
        """Run ``body(transaction)`` in one Firestore transaction (retried on contention:
        ``body`` may run more than once, so it has no other side effects). The client retries
        an aborted commit at once, :data:`TRANSACTION_ATTEMPTS` times; when all abort (a
        process killed inside a transaction can hold its locks for a while), the whole
        transaction is tried again with a growing pause, for up to
        ``firestore_admin.CONTENTION_PATIENCE`` seconds, then it is one StorageError."""

        def attempt() -> T:
            with self.calling(what):
                transaction = self.client.transaction(max_attempts=TRANSACTION_ATTEMPTS)
                result: T = self._fs.transactional(body)(transaction)
                return result

        def refused(waited: float) -> StorageError:
            return StorageError(
                f"firestore {self.project}/{self.prefix}: cannot {what}: its transaction "
                f"kept aborting on contention for {waited:.0f} s"
            )

        return patiently(attempt, refused)

    def _atomically(self, what: str, body: Callable[[CellTransaction], T]) -> T:
        return self.transact(what, lambda transaction: body(CellDocTransaction(self, transaction)))

    def _write_batches(self, what: str, writes: Iterable[tuple[str, Any, Any]]) -> int:
        """Apply ("set"|"merge"|"delete", ref, data) writes in batches of <= 500 and < 9 MB."""
        count = 0
        with self.calling(what):
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
                if op in ("set", "merge"):
                    batch.set(ref, data, merge=op == "merge")
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
            self.cells.document(cell_id(t, d))
            for t in dict.fromkeys(targets)
            for d in date_list
            if "/" not in t
        ]
        found: dict[tuple[str, str], CellRecord] = {}
        with self.calling("read cell records"):
            for start in range(0, len(refs), READ_CHUNK):
                for snapshot in self.client.get_all(
                    refs[start : start + READ_CHUNK], field_paths=["data"]
                ):
                    record = record_of(snapshot)
                    if record is not None and snapshot.id == cell_id(record.target, record.date):
                        found[(record.target, record.date)] = record
        return found

    def get_cell_summaries(
        self, targets: Iterable[str], dates: Iterable[str]
    ) -> dict[tuple[str, str], CellSummary]:
        return firestore_cells.summaries(self, targets, dates)

    def check_results(
        self, targets: Iterable[str], dates: Iterable[str], *, thorough: bool = False
    ) -> dict[tuple[str, str], str]:
        """Two streams (btbuild/storage/firestore_cells.py), every record read in full, so
        always ``thorough``."""
        return firestore_check.check(self, targets, dates)

    def read_checked(
        self, targets: Iterable[str], dates: Iterable[str]
    ) -> tuple[dict[tuple[str, str], CellSummary], dict[tuple[str, str], str]]:
        """Summaries and the integrity check from the same two streams."""
        return firestore_check.read_checked(self, targets, dates)

    def start_read_checked(
        self, targets: Iterable[str], dates: Iterable[str]
    ) -> Callable[[], tuple[dict[tuple[str, str], CellSummary], dict[tuple[str, str], str]]]:
        """The cell documents' query sent now, read and checked by the returned call."""
        return firestore_check.start_read_checked(self, targets, dates)

    def put_cells(self, records: Iterable[CellRecord]) -> int:
        def writes() -> Iterator[tuple[str, Any, Any]]:
            for record in records:
                check_cell_key(record.target, record.date)
                yield (
                    "merge",  # keeps an inline result (its generation is checked on read)
                    self.cells.document(cell_id(record.target, record.date)),
                    record_fields(record),
                )

        return self._write_batches("write cell records", writes())

    # ------------------------------------------------------------------ shards

    def _shards_of(self, target: str, date: str) -> list[tuple[Any, str]]:
        """(reference, generation) of every shard of a cell."""
        query = (
            self.shards.where(filter=self._fs.FieldFilter("target", "==", target))
            .where(filter=self._fs.FieldFilter("date", "==", date))
            .select(["generation"])
        )
        with self.calling(f"list result shards of {target} on {date}"):
            return [(snap.reference, snap.get("generation")) for snap in query.stream()]

    def _write_shards(
        self, target: str, date: str, generation: str, shards: Mapping[int, bytes]
    ) -> None:
        self._write_batches(
            f"write result shards of {target} on {date}",
            (
                ("set", self.shards.document(shard_id(target, date, generation, index)), fields)
                for index, fields in (
                    (index, shard_fields(target, date, generation, index, data))
                    for index, data in shards.items()
                )
            ),
        )

    def _read_shards(
        self, target: str, date: str, generation: str, indices: range
    ) -> list[bytes | None]:
        if not indices:
            return []
        if len(indices) == 1 and indices[0] == 0:  # a one-shard result is usually inline
            with self.calling(f"read the result of {target} on {date}"):
                snapshot = self.cells.document(cell_id(target, date)).get(
                    field_paths=["inline", "inline_gen"]
                )
            inline = inline_of(snapshot.to_dict() or {}, generation) if snapshot.exists else None
            if inline is not None:
                return [inline]
        refs = [
            self.shards.document(shard_id(target, date, generation, index)) for index in indices
        ]
        stored: dict[str, bytes] = {}
        with self.calling(f"read result shards of {target} on {date}"):
            for start in range(0, len(refs), 8):  # <= 8 shards (7 MB) per response
                for snapshot in self.client.get_all(refs[start : start + 8], field_paths=["data"]):
                    if snapshot.exists:
                        data = snapshot.to_dict().get("data")
                        if isinstance(data, bytes):
                            stored[snapshot.id] = data
        return [stored.get(ref.id) for ref in refs]

    def _shard_generations(self, target: str, date: str) -> set[str]:
        return {generation for _ref, generation in self._shards_of(target, date)}

    def _delete_shards(self, target: str, date: str, generations: Collection[str]) -> int:
        wanted = set(generations)
        refs = [ref for ref, found in self._shards_of(target, date) if found in wanted]
        return self._delete_refs(f"delete result shards of {target} on {date}", refs)

    _all_shard_generations = firestore_cells.all_shard_generations
    part_cells = firestore_cells.part_cells

    # ------------------------------------------------------------------ targets

    def _cells_where_target(self, target: str) -> list[tuple[Any, CellRecord | None, Any]]:
        query = self.cells.where(filter=self._fs.FieldFilter("target", "==", target)).select(
            ["date", "data"]
        )
        with self.calling(f"list cells of {target}"):
            return [(snap.reference, record_of(snap), snap.get("date")) for snap in query.stream()]

    def delete_target(self, target: str) -> int:
        cells = self._cells_where_target(target)
        with self.calling(f"list result shards of {target}"):
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
        with self.calling(f"log run {run.run_id}"):
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
        with self.calling("read the run log"):
            for snap in query.stream():
                try:
                    found.append(RunRecord.from_dict(json.loads(snap.get("data"))))
                except (KeyError, ValueError, TypeError):
                    continue  # corrupt entry: skipped
        return found

    def _sim_ref(self, code_hash: str, fabricator_version: str) -> Any:
        return self.sims.document(quote(f"{code_hash}__{fabricator_version}", safe=""))

    def get_sim_hash(self, code_hash: str, fabricator_version: str) -> str | None:
        with self.calling("read the SimHash registry"):
            snap = self._sim_ref(code_hash, fabricator_version).get()
        value = snap.to_dict().get("sim_hash") if snap.exists else None
        return value if isinstance(value, str) else None

    def put_sim_hash(self, code_hash: str, fabricator_version: str, sim_hash: str) -> None:
        with self.calling("write the SimHash registry"):
            self._sim_ref(code_hash, fabricator_version).set(
                {
                    "code_hash": code_hash,
                    "fabricator_version": fabricator_version,
                    "sim_hash": sim_hash,
                }
            )

    def _add_equivalence(self, entry: Equivalence) -> None:
        with self.calling("write the equivalence ledger"):
            self.ledger.document().set(dict(entry.to_dict(), written_ns=time.time_ns()))

    def equivalences(self, target: str | None = None) -> list[Equivalence]:
        query = self.ledger
        if target is not None:
            query = query.where(filter=self._fs.FieldFilter("target", "==", target))
        entries = []
        with self.calling("read the equivalence ledger"):
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

    # ------------------------------------------------------------------ alert outbox

    def pending_alerts(self) -> dict[str, PendingAlert | None]:
        return self.start_pending_alerts()()

    def start_pending_alerts(self) -> Callable[[], dict[str, PendingAlert | None]]:
        """The outbox's query sent now, read by the returned call."""
        with self.calling("read the alert outbox"):
            started = firestore_query.Started(self.client, self.outbox.select(["data"]), ["data"])

        def read() -> dict[str, PendingAlert | None]:
            with self.calling("read the alert outbox"):
                found = started.read()
            return {unquote(key): PendingAlert.from_json(fields["data"]) for key, fields in found}

        return read

    def _delete_alert(self, key: str) -> None:
        with self.calling("delete a published alert"):
            self.outbox.document(quote(key, safe="")).delete()

    def close(self) -> None:
        channel = getattr(getattr(self.client, "_transport", None), "grpc_channel", None)
        if channel is not None:
            channel.close()
        close = getattr(self.client, "close", None)
        if close is not None:
            close()
