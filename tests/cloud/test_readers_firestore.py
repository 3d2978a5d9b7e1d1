"""`btbuild show`, `log` and `diff-cache` on the Firestore emulator (the run-log and cell
queries of the Firestore backend, not SQLite's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cloud.conftest import CloudWorkspace, make_workspace

pytestmark = pytest.mark.emulator  # needs the Google Cloud emulators


def test_show_and_log_read_firestore(cloud_ws: CloudWorkspace) -> None:
    cloud_ws.build()
    code, out, err = cloud_ws.cli(
        "show", "//pricing:value", "--date", "2024-01-02", "--format", "json"
    )
    assert code == 0, err
    data = json.loads(out)
    with cloud_ws.backend() as firestore:
        assert data["value"] == firestore.read_result("value", "2024-01-02")
        assert data["result_hash"] == firestore.get_cell("value", "2024-01-02").result_hash
    assert data["run_id"] and data["trigger"] == "new"
    code, out, err = cloud_ws.cli(
        "show", "//pricing:total", "--date", "2024-01-02", "--path", "users"
    )
    assert code == 0 and out.splitlines()[-1] == "30", err
    code, _, err = cloud_ws.cli("show", "//pricing:value", "--date", "2024-03-01")
    assert code == 1 and "never built" in err
    code, out, err = cloud_ws.cli(
        "log", "//pricing:total", "--date", "2024-01-02", "--format", "json"
    )
    assert code == 0, err
    (run,) = json.loads(out)["runs"]
    assert run["status"] == "committed" and run["users"] == 1 and run["run_id"] == data["run_id"]
    code, out, _ = cloud_ws.cli("log", "--run", data["run_id"], "--last", "50", "--format", "json")
    assert len(json.loads(out)["runs"]) == 12


def test_diff_cache_between_sqlite_and_firestore(cloud_ws: CloudWorkspace, tmp_path: Path) -> None:
    """The migration check: a local SQLite build and the Firestore one agree cell by cell."""
    cloud_ws.build()
    local = make_workspace(tmp_path / "local", "")
    local.build()
    args = ("//...", "--from", "2024-01-01", "--date", "2024-01-03", "--format", "json")
    from btbuild.storage.firestore import DEFAULT_PROJECT

    other = f"firestore:{DEFAULT_PROJECT}/{cloud_ws.prefix}"
    code, out, err = local.cli("diff-cache", other, *args)
    assert code == 0, err
    assert json.loads(out) == {"cells": [], "same": 12, "ok": True}
    local.edit("calculations/pricing/signs.py", "> 0", "< 0")
    local.build()
    code, out, err = local.cli("diff-cache", str(cloud_ws.root), *args)
    assert code == 1
    verdicts = {(c["label"], c["date"]) for c in json.loads(out)["cells"]}
    assert verdicts == {("//pricing:sign", f"2024-01-0{d}") for d in (1, 2, 3)}
