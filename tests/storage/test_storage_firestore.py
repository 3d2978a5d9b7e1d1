"""Firestore-specific layout: what the contract suite cannot say about document fields."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from btbuild.storage.base import summary_of
from tests.storage.conftest import BACKEND_FACTORIES
from tests.storage.test_storage_contract import commit_per_user


def test_a_cell_document_holds_no_unchecked_copy_of_a_record_field(
    tmp_path: Path, _emulators_stopped_at_end: None
) -> None:
    """Only the record, its query keys and the summary the integrity check compares with the
    record: a copy nothing checks could be garbled unseen, so none is written."""
    with BACKEND_FACTORIES["firestore"](tmp_path) as backend:
        record = commit_per_user(backend, "a", "2024-01-01", {"u1": 1}, composite_hash="k1")
        fields = backend.cells.document("a__2024-01-01").get().to_dict()
        # a one-shard result lives inline, checked against its digest like a shard document
        assert set(fields) == {"target", "date", "data", "summary", "inline", "inline_gen"}
        assert fields["inline_gen"] == record.generation
        assert backend._all_shard_generations() == {}
        assert json.loads(fields["summary"]) == [
            "committed",
            "k1",
            record.result_hash,
            record.generation,
            None,
        ]


def test_summaries_of_documents_written_before_the_summary_field(
    tmp_path: Path, _emulators_stopped_at_end: None
) -> None:
    """Documents without the packed summary (an older btbuild) are read in full, not missed;
    the separate copies older versions wrote are never trusted, even when garbled."""
    from google.cloud.firestore import DELETE_FIELD

    with BACKEND_FACTORIES["firestore"](tmp_path) as backend:
        record = commit_per_user(backend, "a", "2024-01-01", {"u1": 1}, composite_hash="k1")
        backend.cells.document("a__2024-01-01").update(
            {"summary": DELETE_FIELD, "result_hash": "0" * 32, "composite_hash": "wrong"}
        )
        assert backend.get_cell_summaries(["a"], ["2024-01-01"]) == {
            ("a", "2024-01-01"): ("committed", "k1", record.result_hash, record.generation, None)
        }
        assert backend.check_results(["a"], ["2024-01-01"]) == {}


@pytest.mark.parametrize("per_target", [True, False])
def test_read_checked_reads_the_plan_only_and_finds_damage_in_both_query_shapes(
    tmp_path: Path,
    _emulators_stopped_at_end: None,
    monkeypatch: pytest.MonkeyPatch,
    per_target: bool,
) -> None:
    """A few targets are queried one by one, many by one date-range stream: both give the
    summaries of exactly the plan's cells and the same damage."""
    from btbuild.storage import firestore_cells

    monkeypatch.setattr(firestore_cells, "PER_TARGET_QUERIES", 100 if per_target else 0)
    with BACKEND_FACTORIES["firestore"](tmp_path) as backend:
        backend.shard_limit = 4096
        names = ["a", "b__x", "c", "d", "e", "outside"]
        value = {f"u{i:03d}": random.Random(i).randbytes(24).hex() for i in range(300)}
        for name in names:
            for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
                commit_per_user(backend, name, day, value, composite_hash=f"k{name}")
        record = backend.get_cell("c", "2024-01-02")
        assert record is not None and record.shard_count >= 2
        shard = f"c__2024-01-02__{record.generation}__1"
        backend.shards.document(shard).update({"data": b"garbage"})
        plan, days = names[:-1], ["2024-01-02", "2024-01-03"]
        summaries, damaged = backend.read_checked(plan, days)
        expected = {key: summary_of(r) for key, r in backend.get_cells(plan, days).items()}
        assert summaries == expected and len(summaries) == 10
        assert damaged == {
            ("c", "2024-01-02"): f"shard 1 of {record.shard_count} does not match its checksum"
        }
        assert backend.check_results(plan, days) == damaged
        assert backend.get_cell_summaries(plan, days) == expected


def test_raw_query_reads_what_query_stream_reads(
    tmp_path: Path, _emulators_stopped_at_end: None
) -> None:
    """The no-op analysis reads the raw RunQuery responses (firestore_query.documents): the
    same documents and string/bytes values as the library's Query.stream, None for a field
    of another type or missing; a client upgrade that changes the internals it uses fails
    here."""
    from btbuild.storage import firestore_query

    with BACKEND_FACTORIES["firestore"](tmp_path) as backend:
        for day in ("2024-01-01", "2024-01-02"):
            commit_per_user(backend, "a", day, {"u1": 1, "ü/2": 2.5}, composite_hash="k" + day)
        odd = backend.cells.document("a__2024-01-03")
        odd.set({"target": "a", "date": "2024-01-03", "summary": 7, "data": b"\x00raw"})
        fields = ["summary", "data", "missing"]
        query = backend.cells.where(filter=backend._fs.FieldFilter("target", "==", "a"))
        raw = firestore_query.documents(backend.client, query.select(fields), fields)
        expected = []
        for snap in query.select(fields).stream():
            values = snap.to_dict()
            expected.append(
                (
                    snap.id,
                    {
                        name: values[name] if isinstance(values.get(name), str | bytes) else None
                        for name in fields
                    },
                )
            )
        assert len(raw) == 3
        assert sorted(raw) == sorted(expected)
        shards = backend.shards.where(filter=backend._fs.FieldFilter("target", "==", "a"))
        raw_shards = firestore_query.documents(backend.client, shards.select(["data"]), ["data"])
        assert sorted(raw_shards) == sorted(
            (snap.id, {"data": snap.get("data")}) for snap in shards.select(["data"]).stream()
        )
        assert all(isinstance(values["data"], bytes) for _id, values in raw_shards)


def test_a_one_shard_result_is_inline_and_survives_every_later_save(
    tmp_path: Path, _emulators_stopped_at_end: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small result is committed inside its cell document (one document per cell for a
    no-op analysis to read); leases, renewals, releases and status puts on the cell keep it;
    a commit of a bigger result drops it; with no room beside the record it is a shard
    document written by the same transaction."""
    from btbuild.storage import firestore_cells

    with BACKEND_FACTORIES["firestore"](tmp_path) as backend:
        record = commit_per_user(backend, "a", "2024-01-01", {"u1": 1}, composite_hash="k1")
        lease = backend.acquire("a", "2024-01-01", "w2", 60)
        assert lease is not None
        backend.release(backend.renew(lease))
        backend.put_cell_status("a", "2024-01-01", "committed", composite_hash="k2")
        assert backend.read_result("a", "2024-01-01") == {"u1": 1}
        assert backend.read_checked(["a"], ["2024-01-01"])[1] == {}
        assert backend._all_shard_generations() == {}
        backend.shard_limit = 4096  # several shards: not inline
        many = {f"u{i:04d}": random.Random(i).randbytes(16).hex() for i in range(1000)}
        bigger = commit_per_user(backend, "a", "2024-01-01", many, now=2e9)
        assert bigger.shard_count > 1
        fields = backend.cells.document("a__2024-01-01").get().to_dict()
        assert "inline" not in fields and "inline_gen" not in fields
        assert backend.read_result("a", "2024-01-01") == many
        assert backend.read_checked(["a"], ["2024-01-01"])[1] == {}
        backend.shard_limit = 1 << 20
        monkeypatch.setattr(firestore_cells, "DOCUMENT_ROOM", 10)
        roomless = commit_per_user(backend, "a", "2024-01-02", {"u1": 2})
        assert "inline" not in backend.cells.document("a__2024-01-02").get().to_dict()
        assert backend._shard_generations("a", "2024-01-02") == {roomless.generation}
        assert backend.read_result("a", "2024-01-02") == {"u1": 2}
        assert backend.read_checked(["a"], ["2024-01-02"])[1] == {}
        assert record.generation not in backend._shard_generations("a", "2024-01-01")


def test_the_client_streams_on_a_channel_made_as_the_library_makes_it_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outside the emulator the client's GAPIC client gets its endpoint and credentials (a
    secure channel; nothing is sent here)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    from btbuild.storage.firestore_query import single_threaded_streams

    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    client = firestore.Client(project="p", credentials=AnonymousCredentials())
    single_threaded_streams(client)
    gapic = client._firestore_api
    assert gapic._transport._host.startswith("firestore.googleapis.com")
    single_threaded_streams(client)  # once made, kept
    assert client._firestore_api is gapic


def test_a_query_sent_early_that_cannot_reach_firestore_is_one_line_when_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """start_read_checked sends its queries without waiting; a transient error is retried
    with back-off until the deadline, then raised when it is read, as the one-line
    StorageError every other Firestore call gives (the transport's stub is called directly,
    so btbuild retries and maps its errors)."""
    pytest.importorskip("google.cloud.firestore")
    from btbuild.errors import StorageError
    from btbuild.storage import firestore_query
    from btbuild.storage.firestore import FirestoreBackend
    from tests.cloud.emulators import free_port

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")  # nobody there
    monkeypatch.setattr(firestore_query, "RETRY_DEADLINE", 0.5)  # (300 s: the library's)
    sends = []
    send = firestore_query.Started._send
    monkeypatch.setattr(
        firestore_query.Started, "_send", lambda self: sends.append(1) or send(self)
    )
    backend = FirestoreBackend(prefix="btbuild/unreachable")
    try:
        finish = backend.start_read_checked(["a", "b"], ["2024-01-01", "2024-01-02"])
        # one query per target of a small plan, each sent at once on a thread of its own
        deadline = time.monotonic() + 30
        while len(sends) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(sends) == 2
        with pytest.raises(StorageError) as raised:
            finish()
    finally:
        backend.close()
    assert len(sends) > 3  # unavailable is transient: sent again (backing off) until the deadline
    message = str(raised.value)
    assert message.startswith("firestore ") and "\n" not in message
    assert "cannot read cells from 2024-01-01 to 2024-01-02 of a: " in message


def test_the_outbox_read_begun_early_reads_what_pending_alerts_reads(
    tmp_path: Path, _emulators_stopped_at_end: None
) -> None:
    """A build sends the outbox's query when it begins (start_pending_alerts) and publishes
    left-overs only if it was not empty: the early read gives every entry, unreadable ones as
    None, as pending_alerts does."""
    from urllib.parse import quote

    from btbuild.storage.outbox import PendingAlert

    with BACKEND_FACTORIES["firestore"](tmp_path) as backend:
        assert backend.start_pending_alerts()() == {}
        alert = PendingAlert("a", "2024-01-01", "g1", "h1", None, "per_date", 1, 1.0)
        backend.outbox.document(quote(alert.key, safe="")).set({"data": alert.to_json()})
        backend.outbox.document("garbled").set({"data": "{not json"})
        begun = backend.start_pending_alerts()
        assert begun() == backend.pending_alerts() == {alert.key: alert, "garbled": None}


def test_a_garbled_record_or_summary_nested_too_deep_is_unreadable_not_a_crash() -> None:
    """What the no-op analysis decodes from a cell document (msgspec, json.loads when msgspec
    refuses) is None when unreadable, also when nested deeper than json.loads can go: the
    cell is damaged and rebuilt, the build does not end in a traceback."""
    pytest.importorskip("msgspec")
    from btbuild.storage import firestore_cells

    deep = "[" * 100_000 + "]" * 100_000
    assert firestore_cells.record_from(deep) is None
    assert firestore_cells.packed_summary(deep) is None
    assert firestore_cells.packed_summary('["committed",null,null,null,NaN]') is None


def test_a_transaction_whose_commits_all_abort_is_tried_again_then_one_line(
    tmp_path: Path, _emulators_stopped_at_end: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client retries an aborted commit at once, 25 times, then raises a bare ValueError
    (a killed builder's transaction can hold its locks that long): the whole transaction is
    tried again with growing pauses, and when that is still refused after the patience, it is
    one StorageError naming the operation, never an internal error."""
    from btbuild.errors import StorageError
    from btbuild.storage import firestore_admin

    with BACKEND_FACTORIES["firestore"](tmp_path) as backend:
        real = backend._fs.transactional
        failures = {"left": 2}

        def aborting(body):
            def run(transaction):
                if failures["left"] > 0:
                    failures["left"] -= 1
                    raise ValueError("Failed to commit transaction in 25 attempts.")
                return real(body)(transaction)

            return run

        monkeypatch.setattr(backend._fs, "transactional", aborting)
        record = commit_per_user(backend, "a", "2024-01-01", {"u1": 1}, composite_hash="k1")
        assert failures["left"] == 0 and backend.get_cell("a", "2024-01-01") == record
        failures["left"] = 10**6
        monkeypatch.setattr(firestore_admin, "CONTENTION_PATIENCE", 0.5)
        with pytest.raises(StorageError, match="its transaction kept aborting on contention"):
            backend.forget_result("a", "2024-01-01")
