"""Real builder processes on one SQLite cache, for the kill -9 and concurrent-builder tests.

A workspace of the pricing graph plus a historical chain, a fused per_user target
(``scaled``) and a per_date target that streams its per_user deps (``book``, ``stream_deps``)
over DAYS days and USERS users;
``value`` (the root per_user target) sleeps a little per user so builds last long enough to be
killed mid-way. ``variant`` toggles the root target's code: every toggle re-runs the graph.
References are clean from-scratch builds of each variant in their own folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psutil

from tests.execution.conftest import FIRST, make_workspace, write_day

USERS = [f"u{i:03d}" for i in range(60)]
DAYS = 4
LAST = (FIRST + timedelta(days=DAYS - 1)).isoformat()
HIST = """\
[calculation.running]
entry = "h:running"
kind = "per_date"
deps = ["//pricing:total"]
historical = true

[calculation.streak]
entry = "h:streak"
kind = "per_user"
roots = ["portfolio"]
deps = ["//pricing:value"]
historical = true

[calculation.scaled]
entry = "h:scaled"
kind = "per_user"
deps = ["//pricing:value"]

[calculation.book]
entry = "h:book"
kind = "per_date"
deps = ["//pricing:value", ":scaled"]
stream_deps = true
"""
HIST_CODE = """\
def running(ctx):
    return round((ctx.previous or 0) + ctx.dep("total")["total"], 6)


def streak(ctx):
    return round((ctx.previous or 0) + ctx.dep("value") / 1000, 6)


def scaled(ctx):  # a per_user dep of a per_user dep, not historical: runs fused with value
    return round(ctx.dep("value") / 1000, 6)


def book(ctx):  # stream_deps: its per_user deps are read shard by shard while others write
    values, scaled = ctx.dep("value"), ctx.dep("scaled")
    assert set(values) == set(scaled)
    return {
        "users": len(values),
        "value": round(sum(values[user] for user in values), 6),
        "scaled": round(sum(scaled.values()), 6),
        "top": max(values, key=lambda user: (values[user], user)),
    }
"""
SLOW_VALUE = """\
import time


def value(ctx):
    time.sleep(0.002)
    prices = ctx.root("prices")
    return {formula}
"""
# two spellings of the same formula (float products commute exactly): a cosmetic edit that
# the simulation proves, so builders adopt new code hashes while others run
FORMS = (
    '{factor} * sum(p["quantity"] * prices[p["symbol"]]["close"] for p in ctx.user["portfolio"]["positions"])',
    'sum(p["quantity"] * prices[p["symbol"]]["close"] for p in ctx.user["portfolio"]["positions"]) * {factor}',
)


def stress_workspace(root: Path, variant: int = 0, storage: str = "") -> Path:
    """The stress workspace; ``storage`` is a root BUILD.toml [storage] table (SQLite if empty)."""
    ws = make_workspace(root, storage)
    for offset in range(DAYS):
        write_day(root, FIRST + timedelta(days=offset), users=USERS)
    ws.write("calculations/hist/BUILD.toml", HIST)
    ws.write("calculations/hist/h.py", HIST_CODE)
    set_variant(root, variant)
    return root


def set_variant(root: Path, variant: int, form: int = 0) -> None:
    """``variant`` changes value's behaviour (every cell downstream re-runs); ``form`` only
    its spelling (a cosmetic edit: the results stay the variant's)."""
    formula = FORMS[form].format(factor=1 + variant)
    (root / "calculations" / "pricing" / "calcs.py").write_text(SLOW_VALUE.format(formula=formula))


def btbuild(root: Path, *argv: str) -> list[str]:
    return [sys.executable, "-m", "btbuild", "--workspace", str(root), *argv]


def start_build(root: Path, *argv: str) -> subprocess.Popen[str]:
    """A builder in its own session (it leads its process group, like a shell job)."""
    return subprocess.Popen(
        btbuild(root, "build", *argv, "--date", LAST, "--format", "json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run(root: Path, *argv: str) -> tuple[int, str, str]:
    done = subprocess.run(btbuild(root, *argv), capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout, done.stderr


def in_process(root: Path, *argv: str) -> tuple[int, str, str]:
    """The CLI in this process (no interpreter start: the checks run after every trial)."""
    import contextlib
    import io

    from btbuild.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--workspace", str(root), *argv])
    return code, out.getvalue(), err.getvalue()


def cache_path(root: Path) -> Path:
    return root / ".btbuild" / "cache.db"


def results(root: Path) -> dict[tuple[str, str], str]:
    """(target, date) -> result hash of every cell with a committed result."""
    conn = sqlite3.connect(cache_path(root))
    try:
        rows = conn.execute(
            "SELECT target, date, result_hash FROM cells WHERE generation IS NOT NULL"
        ).fetchall()
    finally:
        conn.close()
    return {(target, day): result for target, day, result in rows}


def reference(tmp: Path, variant: int) -> dict[tuple[str, str], str]:
    """The results of a clean from-scratch build of ``variant``."""
    root = stress_workspace(tmp / f"reference-{variant}", variant)
    code, _out, err = in_process(root, "build", "//...", "--date", LAST)
    assert code == 0, err
    return results(root)


def assert_current(root: Path, expected: dict[tuple[str, str], str], what: str = "") -> None:
    """Every cell equals the clean build (hashes, and shards that match them), and a dry run
    (what ``btbuild status`` shows) has nothing to run."""
    from btbuild.storage import SqliteBackend

    found = results(root)
    wrong = sorted(key for key in set(found) | set(expected) if found.get(key) != expected.get(key))
    assert not wrong, f"{what}: cells differ from a clean build: {wrong}"
    with SqliteBackend(cache_path(root)) as backend:
        for (target, day), result_hash in expected.items():
            assert backend.get_cell(target, day).status == "committed", (target, day)
            assert backend.has_result(target, day), (target, day)
            value = backend.read_result(target, day)
            assert value is not None or result_hash is None, (target, day)
    assert_nothing_to_run(root, what)


def assert_nothing_to_run(root: Path, what: str) -> None:
    """A dry run (what ``btbuild status`` shows) of the whole graph has nothing to run."""
    code, out, err = in_process(
        root, "build", "//...", "--date", LAST, "--dry-run", "--format", "json"
    )
    assert code == 0, err
    runnable = [c for c in json.loads(out)["cells"] if c["status"] != "skipped"]
    assert runnable == [], f"{what}: would re-run {runnable[:5]}"


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                living.append(process)
        except psutil.NoSuchProcess:
            continue
    return living


def kill(build: subprocess.Popen[str], *, group: bool) -> list[psutil.Process]:
    """SIGKILL the builder (or its whole process group); returns every process it had."""
    family = [psutil.Process(build.pid), *descendants(build.pid)]
    if group:
        os.killpg(build.pid, signal.SIGKILL)
    else:
        os.kill(build.pid, signal.SIGKILL)
    return family


def wait_dead(family: list[psutil.Process], seconds: float = 5.0) -> list[psutil.Process]:
    """The processes still alive (not even zombies) ``seconds`` after the kill."""
    deadline = time.monotonic() + seconds
    while alive(family) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(family)


def wipe_cache(root: Path) -> None:
    shutil.rmtree(root / ".btbuild", ignore_errors=True)
