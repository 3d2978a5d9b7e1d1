"""Damaged Firestore cell documents met by a build's no-op read (the fast path of
btbuild/storage/firestore_check.py and the full read it falls back to): each damaged cell is
rebuilt, the build exits 0 and every cell equals a clean from-scratch build (SQLite)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.cloud.test_firestore_stress import firestore_results
from tests.execution.conftest import make_workspace
from tests.execution.stress_harness import results

pytestmark = [pytest.mark.emulator]

DAY1, DAY2, LAST = "2024-01-01", "2024-01-02", "2024-01-03"


def _damage(prefix: str) -> list[tuple[str, str]]:
    """Four cells damaged four ways; their (target, date)."""
    from btbuild.storage import FirestoreBackend

    with FirestoreBackend(prefix=prefix) as backend:

        def document(target: str, day: str) -> tuple[object, dict]:
            ref = backend.cells.document(f"{target}__{day}")
            return ref, ref.get().to_dict()

        ref, fields = document("value", DAY2)  # the inline shard's bytes (fast path: digest)
        assert isinstance(fields.get("inline"), bytes), fields.keys()
        ref.update({"inline": fields["inline"][:-1] + bytes([fields["inline"][-1] ^ 1])})
        ref, fields = document("total", LAST)  # result hash and summary rewritten together
        row, summary = json.loads(fields["data"]), json.loads(fields["summary"])
        row[7] = summary[2] = "0" * 32  # (records.CELL_FIELD_ORDER: result_hash)
        ref.update({"data": json.dumps(row), "summary": json.dumps(summary, separators=(",", ":"))})
        ref, fields = document("sign", DAY1)  # the record unreadable (the full read)
        ref.update({"data": fields["data"][: len(fields["data"]) // 2]})
        ref, fields = document("price_level", DAY2)  # a summary naming another result
        summary = json.loads(fields["summary"])
        summary[2] = "f" * 32
        ref.update({"summary": json.dumps(summary, separators=(",", ":"))})
    return [("value", DAY2), ("total", LAST), ("sign", DAY1), ("price_level", DAY2)]


def test_damaged_cell_documents_are_rebuilt_to_a_clean_builds_results(
    tmp_path: Path, cloud: dict[str, str]
) -> None:
    clean = make_workspace(tmp_path / "clean")  # SQLite, from scratch
    clean.build(date=LAST)
    expected = results(clean.root)
    prefix = f"damage/{uuid.uuid4().hex[:12]}"
    ws = make_workspace(
        tmp_path / "ws", f'\n[storage]\nbackend = "firestore"\nprefix = "{prefix}"\n'
    )
    ws.build(date=LAST)
    damaged = _damage(prefix)
    cells = ws.cells(ws.build(date=LAST))
    rebuilt = {(label.rpartition(":")[2], day): cell for (label, day), cell in cells.items()}
    assert all(rebuilt[key] == ("ran", "damaged") for key in damaged), rebuilt
    assert firestore_results(prefix, set(expected)) == expected
    again = ws.cells(ws.build("--dry-run", date=LAST))
    assert all(status == "skipped" for status, _reason in again.values()), again
