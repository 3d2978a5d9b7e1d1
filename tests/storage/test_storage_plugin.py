"""Storage backends are plugins: a toy backend from a test plugin (tests/storage/toy_backend.py,
one module plus its registration) runs a full build, a no-op rebuild and status; a backend
validates its own [storage] table with one-line errors naming the file, line and key."""

from __future__ import annotations

import json
from pathlib import Path

from tests.execution.conftest import make_workspace

PLUGINS = 'plugins = ["btbuild.plugins.jsonl"]'
TOY = 'plugins = ["btbuild.plugins.jsonl", "tests.storage.toy_backend"]'


def _toy_workspace(root: Path, storage: str) -> object:
    ws = make_workspace(root, storage=storage)
    build = root / "BUILD.toml"
    build.write_text(build.read_text().replace(PLUGINS, TOY))
    return ws


def test_a_plugin_backend_builds_rebuilds_nothing_and_reports_status(tmp_path: Path) -> None:
    ws = _toy_workspace(
        tmp_path / "ws", '\n[storage]\nbackend = "jsonfile"\npath = "cache/c.json"\n'
    )
    first = ws.build(date="2024-01-03", expect=0)
    assert first["summary"]["ran"] > 0 and first["summary"]["failed"] == 0, first["summary"]
    state = json.loads((tmp_path / "ws" / "cache" / "c.json").read_text())
    assert len(state["cells"]) == first["summary"]["ran"] and state["shards"]
    assert not (tmp_path / "ws" / ".btbuild" / "cache.db").exists()  # not SQLite

    again = ws.build(date="2024-01-03", expect=0)
    assert again["summary"]["ran"] == 0, again["summary"]
    assert {c["reason"] for c in again["cells"]} == {"up_to_date"}

    code, out, err = ws.cli("status", "//...", "--date", "2024-01-03", "--format", "json")
    assert code == 0, err
    cells = json.loads(out)["cells"]
    assert len(cells) == len(again["cells"]), cells
    assert {(c["status"], c["reason"]) for c in cells} == {("skipped", "up_to_date")}, cells


def test_the_backend_checks_its_own_table(tmp_path: Path) -> None:
    ws = _toy_workspace(tmp_path / "ws", '\n[storage]\nbackend = "jsonfile"\nprefix = "x"\n')
    code, _out, err = ws.cli("build", "//...", "--date", "2024-01-01")
    assert code == 2, err
    line = err.strip().splitlines()[-1]
    assert "BUILD.toml:" in line and "[storage] prefix" in line and "'jsonfile'" in line, err


def test_an_unknown_backend_names_the_registered_ones(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", storage='\n[storage]\nbackend = "sqlit"\n')
    code, _out, err = ws.cli("build", "//...", "--date", "2024-01-01")
    assert code == 2, err
    assert "BUILD.toml:" in err and "did you mean 'sqlite'?" in err, err
    assert "firestore" in err and "memory" in err, err


def test_a_builtin_backend_refuses_a_bad_value_with_one_line(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", storage='\n[storage]\nbackend = "sqlite"\npath = 3\n')
    code, _out, err = ws.cli("build", "//...", "--date", "2024-01-01")
    assert code == 2, err
    assert "[storage] path: must be a str, got 3" in err and "Traceback" not in err, err
