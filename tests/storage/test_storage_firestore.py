"""Firestore-specific layout: what the contract suite cannot say about document fields."""

from __future__ import annotations

from pathlib import Path

from tests.storage.conftest import BACKEND_FACTORIES
from tests.storage.test_storage_contract import commit_per_user


def test_summaries_of_documents_written_before_the_summary_fields(
    tmp_path: Path, _emulators_stopped_at_end: None
) -> None:
    """Documents without the summary fields (an older btbuild) are read in full, not missed."""
    from google.cloud.firestore import DELETE_FIELD

    with BACKEND_FACTORIES["firestore"](tmp_path) as backend:
        record = commit_per_user(backend, "a", "2024-01-01", {"u1": 1}, composite_hash="k1")
        backend.cells.document("a__2024-01-01").update(
            {"composite_hash": DELETE_FIELD, "result_hash": DELETE_FIELD}
        )  # type: ignore[attr-defined]
        assert backend.get_cell_summaries(["a"], ["2024-01-01"]) == {
            ("a", "2024-01-01"): ("committed", "k1", record.result_hash, record.generation, None)
        }
