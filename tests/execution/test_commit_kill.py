"""A builder killed by SIGKILL in the middle of a commit (a real process): inside the commit's
transaction (its record written, not committed: SQLite rolls it back) or just after it (the
record visible, the replaced generation's shards not dropped yet). The next build, of the
killed builder's code or of the code before it, ends equal to a clean build of that code,
the integrity and composite-hash checks find nothing left over, and a build after it runs
nothing (btbuild/analysis/rule.py: a record whose composite hash is not the key of its
inputs is damaged, never up to date)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.execution.conftest import CALCS, Workspace, make_workspace

END = "2024-01-01"
DAYS = [END]
TARGETS = ["value", "total", "sign", "price_level"]
DOUBLED = CALCS.replace("return sum(", "return 2 * sum(")
KILLED = textwrap.dedent(
    """
    import os, sys, time
    from btbuild.storage import sqlite
    from btbuild.storage.primitives import BackendPrimitives

    report = open(os.dup(1), "w")  # the build sends sys.stdout elsewhere while it runs
    where, target, day = sys.argv[1:4]

    def pause(name, date):
        if (name, date) == (target, day):
            print("paused", file=report, flush=True)
            time.sleep(600)

    if where == "in the transaction":
        save = sqlite._SqliteTransaction.save

        def saving(self, record):
            save(self, record)
            if record.status == "committed":
                pause(record.target, record.date)

        sqlite._SqliteTransaction.save = saving
    else:
        drop = BackendPrimitives._drop_unreferenced

        def dropping(self, name, date):
            pause(name, date)
            return drop(self, name, date)

        BackendPrimitives._drop_unreferenced = dropping
    from btbuild.cli.main import main

    sys.exit(main(sys.argv[4:]))
    """
)


def _results(ws: Workspace) -> dict[tuple[str, str], Any]:
    with ws.backend() as backend:
        assert backend.check_results(TARGETS, DAYS, thorough=True) == {}
        return {(t, d): backend.read_expected(t, d) for t in TARGETS for d in DAYS}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Clean builds of both codes: their results, and the old code's cache to start from."""
    found: dict[str, Any] = {}
    for name, code in (("old", CALCS), ("doubled", DOUBLED)):
        ws = make_workspace(tmp_path_factory.mktemp(name) / "ws", execution="retry_backoff = 0\n")
        ws.write("calculations/pricing/calcs.py", code)
        ws.build(date=END)
        found[name] = _results(ws)
        found[f"{name} root"] = ws.root
    return found


@pytest.mark.parametrize(
    ("where", "then"), [("in the transaction", "doubled"), ("after the transaction", "old")]
)
def test_a_builder_killed_mid_commit_leaves_the_next_build_clean(
    clean: dict[str, Any], tmp_path: Path, where: str, then: str
) -> None:
    import shutil

    shutil.copytree(clean["old root"], tmp_path / "ws")
    ws = Workspace(tmp_path / "ws")
    ws.write("calculations/pricing/calcs.py", DOUBLED)
    argv = ["--workspace", str(ws.root), "build", "//...", "--date", END]
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, where, "total", END, *argv],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "paused\n"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    with ws.backend() as backend:  # killed mid-run: value new, total rolled back or not
        assert backend.read_result("value", END) == clean["doubled"][("value", END)]
        done = "old" if where == "in the transaction" else "doubled"
        assert backend.read_result("total", END) == clean[done][("total", END)]
    ws.write("calculations/pricing/calcs.py", DOUBLED if then == "doubled" else CALCS)
    cells = ws.cells(ws.build(date=END))
    assert not [cell for cell, (_status, reason) in cells.items() if reason == "damaged"], cells
    assert _results(ws) == clean[then]
    assert ws.build(date=END)["summary"]["ran"] == 0
