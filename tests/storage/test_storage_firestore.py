"""Firestore-specific layout: what the contract suite cannot say about document fields."""

from __future__ import annotations

import json
from pathlib import Path

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
        assert set(fields) == {"target", "date", "data", "summary"}
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
