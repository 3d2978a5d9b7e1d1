"""Two real builders of different code on one SQLite cache, both building a sharded per_user
cell (``user_shards = 2``): builder B commits its parts (same part cells, another key) while
builder A's combine is reading A's parts, shard by shard. A's combine must give the cell back
(``blocked / deps_moved``: planned again), never count a failed attempt for it (enough of
those dead-letter a cell whose code is fine), and both codes end with exactly a clean build's
results.

A validator plugin freezes A's combine after some users (its parts are several shards each:
``flush_every = 3``) until the test, having seen B wait for A's lease on the cell (B's parts
committed by then), lets it go.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.execution.conftest import make_workspace
from tests.execution.stress_harness import in_process

DAY = "2024-01-01"
HOLD_PLUGIN = """\
import time
from pathlib import Path

from btbuild.plugins import ResultValidator

HOLD = Path(__file__).resolve().parent.parent / "hold"


class Hold(ResultValidator):
    # parts run no validators: this is a combine; frozen after 10 users once, when armed
    def __init__(self):
        self.users = 0

    def observe(self, user_id, value):
        self.users += 1
        if self.users == 10 and (HOLD / "armed").exists():
            (HOLD / "armed").unlink()
            (HOLD / "held").touch()
            while not (HOLD / "go").exists():
                time.sleep(0.01)

    def finish(self):
        return []


def btbuild_result_validators(target_name, kind):
    return [Hold()] if target_name == "value" and kind == "per_user" else []
"""


def _workspace(root: Path, factor: int, cache: str) -> Path:
    ws = make_workspace(
        root,
        storage=f'[storage]\nbackend = "sqlite"\npath = "{cache}"\n',
        execution="user_shards = 2\nflush_every = 3\nretry_backoff = 0\n",
    )
    ws.edit("BUILD.toml", '"btbuild.plugins.jsonl"]', '"btbuild.plugins.jsonl", "plugins.hold"]')
    ws.write("plugins/hold.py", HOLD_PLUGIN)
    ws.edit("calculations/pricing/calcs.py", "    return sum(", f"    return {factor} * sum(")
    (root / "hold").mkdir()
    return root


def _start(root: Path) -> subprocess.Popen[str]:
    """A builder of ``root``, its output in files of its hold folder."""
    argv = ["--workspace", str(root), "build", "//...", "--jobs", "2", "--date", DAY]
    with (root / "hold" / "out").open("w") as out, (root / "hold" / "err").open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "btbuild", *argv, "--format", "json"],
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
        )


def _wait(what: str, done: Callable[[], bool], builds: list[subprocess.Popen[str]]) -> None:
    """Wait for ``done`` (a file, a builder's own log line); fail if a builder ended first."""
    deadline = time.monotonic() + 120
    while not done():
        ended = [build.returncode for build in builds if build.poll() is not None]
        assert not ended, f"waiting for {what}: a builder ended first (exit {ended})"
        assert time.monotonic() < deadline, f"waiting for {what}: timed out"
        time.sleep(0.02)


def _values(cache: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(target, date) -> (key, result hash) of every committed cell that is not a part."""
    conn = sqlite3.connect(cache)
    try:
        rows = conn.execute(
            "SELECT target, date, composite_hash, result_hash FROM cells"
            " WHERE generation IS NOT NULL AND status = 'committed' AND instr(target, '~') = 0"
        ).fetchall()
    finally:
        conn.close()
    return {(target, day): (key, result) for target, day, key, result in rows}


def _cache_of(root: Path) -> Path:
    return next(path for path in root.glob("**/cache.db") if "hold" not in path.parts)


def _build(root: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "btbuild", "--workspace", str(root), "build", "//..."]
        + ["--jobs", "2", "--date", DAY, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def test_a_combine_whose_parts_another_builder_replaces_while_it_reads_is_planned_again(
    tmp_path: Path,
) -> None:
    # a cache path lies inside its workspace: B's workspace is a folder of A's (outside A's
    # packages) and both name B's cache file
    a = _workspace(tmp_path / "a", factor=1, cache="b/.btbuild/cache.db")
    b = _workspace(tmp_path / "a" / "b", factor=2, cache=".btbuild/cache.db")
    cache = b / ".btbuild" / "cache.db"
    (a / "hold" / "armed").touch()
    build_a = _start(a)
    _wait("A's combine reading its parts", (a / "hold" / "held").exists, [build_a])
    build_b = _start(b)  # commits its parts over A's, then waits for A's lease on the cell
    waiting = "waiting for another builder: //pricing:value"
    _wait(
        "B waiting for A", lambda: waiting in (b / "hold" / "err").read_text(), [build_a, build_b]
    )
    (a / "hold" / "go").touch()
    assert build_a.wait(timeout=120) in (0, 1), (a / "hold" / "err").read_text()
    assert build_b.wait(timeout=120) in (0, 1), (b / "hold" / "err").read_text()
    conn = sqlite3.connect(cache)
    runs = [json.loads(data) for (data,) in conn.execute("SELECT data FROM runs")]
    conn.close()
    failed = [(run["target"], run["error"]) for run in runs if run["status"] != "committed"]
    assert failed == [], f"a concurrent commit was counted as a failed attempt: {failed}"
    for root in (a, b):  # each code once more, alone: exactly its clean build's results
        _build(root)
        clean = tmp_path / "clean" / root.name
        shutil.copytree(root, clean, ignore=shutil.ignore_patterns("b", ".btbuild", "hold"))
        code, _out, err = in_process(clean, "build", "//...", "--date", DAY)
        assert code == 0, err
        expected = {cell: result for cell, (_key, result) in _values(_cache_of(clean)).items()}
        assert {cell: result for cell, (_key, result) in _values(cache).items()} == expected
        report = _build(root)
        assert report["summary"]["ran"] == 0, report  # type: ignore[index]
