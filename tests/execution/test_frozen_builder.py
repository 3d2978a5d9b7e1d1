"""A builder frozen past its lease (SIGSTOP: a paused VM, a swapped-out laptop, a stop-the-world
stall) while another builder of other code takes its cell over: when the frozen one wakes up
it must not put its result over the newer one, nor damage it, and both must end cleanly.
Real processes; the frozen builder is stopped and continued by its process id."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.execution.conftest import Workspace, make_workspace

DAY = "2024-01-02"
LEASE = 2  # seconds: renewed every third of it while the cell runs, not while frozen

# the calculation reads its test controls from a file outside the workspace (not an input:
# environment variables it read would be, and the builders' differing values would give their
# cells different keys)
SLOW_VALUE = """\
import json, time
from pathlib import Path

CONTROL = Path(__file__).resolve().parents[3] / "control.json"

def value(ctx):
    if ctx.user.id == "u002":  # after u001's line was written: a flush is pending
        control = json.loads(CONTROL.read_text())
        Path(control["mark"]).write_text("in the calculation")
        time.sleep(control["sleep"])
    prices = ctx.root("prices")
    return sum(p["quantity"] * prices[p["symbol"]]["close"] for p in ctx.user["portfolio"]["positions"])
"""


def _control(mark: Path, sleep: float = 0.0) -> None:
    (mark.parent / "control.json").write_text(json.dumps({"mark": str(mark), "sleep": sleep}))


def _builder(ws: Workspace, mark: Path, *argv: str) -> subprocess.Popen[str]:
    _control(mark, 1.5)
    return subprocess.Popen(
        [sys.executable, "-m", "btbuild", "--workspace", str(ws.root), "build", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for(path: Path, process: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the builder never reached its calculation"
        time.sleep(0.02)


def test_a_builder_frozen_past_its_lease_never_overwrites_the_takeover(tmp_path: Path) -> None:
    """The frozen builder has flushed a shard (``flush_every = 1``) when it is stopped; the
    other builder takes the cell over once the lease ran out and commits other code's result.
    The frozen one wakes up, loses its commit (compare-and-set on its attempt) and carries on.
    Each cell must end holding exactly what the code its key names computes, nothing damaged,
    and a build of the code on disk must then have nothing left to do."""
    flush_every = 1
    ws = make_workspace(
        tmp_path / "ws", execution=f"lease_seconds = {LEASE}\nflush_every = {flush_every}\n"
    )
    ws.write("calculations/pricing/calcs.py", SLOW_VALUE)
    mark = tmp_path / "mark"
    frozen = _builder(ws, mark, "//pricing:value", "--date", DAY, "--format", "json")
    try:
        _wait_for(mark, frozen)
        os.kill(frozen.pid, signal.SIGSTOP)
        # other code, another result: what the cell must hold in the end
        ws.edit("calculations/pricing/calcs.py", "return sum(", "return 2 * sum(")
        time.sleep(LEASE + 0.5)  # the frozen builder's lease runs out (no heartbeat)
        with _marked(tmp_path / "mark2"):
            report = ws.build("//pricing:value", date=DAY)
        assert ws.cells(report)[("//pricing:value", DAY)][0] == "ran"
        os.kill(frozen.pid, signal.SIGCONT)
        out, err = frozen.communicate(timeout=120)
    finally:
        if frozen.poll() is None:
            os.killpg(frozen.pid, signal.SIGCONT)
            os.killpg(frozen.pid, signal.SIGKILL)
            frozen.wait()
    assert frozen.returncode in (0, 1), err
    assert "internal error" not in err and "Traceback" not in err, err
    # every cell holds exactly what the code its key names computes (either builder's)
    clean = {}
    for version, text in (
        ("v1", SLOW_VALUE),
        ("v2", SLOW_VALUE.replace("return sum(", "return 2 * sum(")),
    ):
        clean[version] = make_workspace(tmp_path / version)
        clean[version].write("calculations/pricing/calcs.py", text)
        with _marked(tmp_path / f"mark-{version}"):
            clean[version].build("//pricing:value", date=DAY)
    with ws.backend() as backend:
        for day in ("2024-01-01", DAY):
            held = backend.get_cell("value", day)
            assert held is not None and held.status == "committed", held
            matching = [
                version
                for version, other in clean.items()
                if other.backend().get_cell("value", day).composite_hash == held.composite_hash
            ]
            assert len(matching) == 1, (day, held)
            with clean[matching[0]].backend() as expected:
                assert backend.read_result("value", day) == expected.read_result("value", day)
    # and a build of the code on disk (v2) ends with its results, up to date, nothing damaged
    with _marked(tmp_path / "mark3"):
        ws.build("//pricing:value", date=DAY)
        again = ws.build("//pricing:value", date=DAY)
        code, fsck_out, fsck_err = ws.cli("fsck")
    assert {status for status, _ in ws.cells(again).values()} == {"skipped"}
    assert code == 0, fsck_out + fsck_err
    with ws.backend() as backend, clean["v2"].backend() as expected:
        assert backend.read_result("value", DAY) == expected.read_result("value", DAY)


@contextlib.contextmanager
def _marked(path: Path) -> Iterator[None]:
    _control(path)
    yield
