"""Builds through Pub/Sub workers against the emulators."""

from __future__ import annotations

from pathlib import Path

from tests.cloud.conftest import CloudWorkspace, make_workspace


def results(backend, report) -> dict:
    found = {}
    for cell in report["cells"]:
        name = cell["label"].split(":")[1]
        record = backend.get_cell(name, cell["date"])
        found[(name, cell["date"])] = (record.result_hash if record else None, backend.read_result(name, cell["date"]))
    return found


def test_three_workers_match_a_local_sqlite_build(cloud_ws: CloudWorkspace, tmp_path: Path) -> None:
    local = make_workspace(tmp_path / "local", "")
    expected = local.build()
    cloud_ws.start_workers(3)
    report = cloud_ws.build("--executor", "pubsub")
    assert report == expected, cloud_ws.worker_logs()
    assert report["summary"]["ran"] == 12
    with local.backend() as sqlite, cloud_ws.backend() as firestore:
        assert results(firestore, report) == results(sqlite, expected)
    again = cloud_ws.build("--executor", "pubsub")
    assert again["summary"]["skipped"] == 12 and again["summary"]["ran"] == 0
