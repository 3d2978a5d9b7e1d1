"""A local builder next to a Pub/Sub build on one Firestore cache (issue 12): the local one
waits for the cells the workers lease instead of reporting them blocked and exiting 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.cloud.conftest import REPO, CloudWorkspace, make_workspace

pytestmark = pytest.mark.emulator  # needs the Google Cloud emulators


def test_a_local_builder_next_to_pubsub_workers_waits_for_their_leases(
    cloud_ws: CloudWorkspace, tmp_path: Path
) -> None:
    expected = make_workspace(tmp_path / "local", "").build()
    cloud_ws.edit(
        "calculations/pricing/calcs.py",
        "def value(ctx):\n",
        "def value(ctx):\n    import time\n    time.sleep(0.02)\n",
    )
    cloud_ws.start_workers(2)
    outcome: dict = {}
    distributed = threading.Thread(
        target=lambda: outcome.update(report=cloud_ws.build("--executor", "pubsub", expect=None))
    )
    distributed.start()
    local = subprocess.run(
        [sys.executable, "-m", "btbuild", "--workspace", str(cloud_ws.root), "build", "//..."]
        + ["--date", "2024-01-03", "--format", "json"],
        env=dict(os.environ, **cloud_ws.env, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    distributed.join(timeout=300)
    assert not distributed.is_alive(), cloud_ws.worker_logs()
    assert local.returncode == 0, local.stderr
    report = outcome["report"]
    for cells in (report["cells"], json.loads(local.stdout)["cells"]):
        assert {c["status"] for c in cells} <= {"ran", "skipped"}, cells
    ran = {
        (c["label"], c["date"])
        for cells in (report["cells"], json.loads(local.stdout)["cells"])
        for c in cells
        if c["status"] == "ran"
    }
    assert len(ran) == 12  # every cell built once, by one of them
    again = cloud_ws.build("--dry-run")
    assert {c["status"] for c in again["cells"]} == {"skipped"}
    with cloud_ws.backend() as firestore:
        for cell in expected["cells"]:
            name = cell["label"].split(":")[1]
            local_hash = make_hash(tmp_path / "local", name, cell["date"])
            assert firestore.get_cell(name, cell["date"]).result_hash == local_hash


def make_hash(root: Path, name: str, day: str) -> str | None:
    from btbuild.storage import SqliteBackend

    with SqliteBackend(root / ".btbuild" / "cache.db") as backend:
        record = backend.get_cell(name, day)
        return record.result_hash if record else None
