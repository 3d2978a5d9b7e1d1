"""The code recorded under a code key for the coverage of a later change
(btbuild/sim/snapshots.py) is the code that key was hashed from, never what the file holds
when the SimHash is registered."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from sim_helpers import VALUE

from btbuild.session import Session
from btbuild.sim import snapshots
from btbuild.sim.optimizer import code_key
from btbuild.storage import open_backend

RETURN = '    return {"invested": invested, "worth": invested + book["cash"]}'
# a behaviour change behind a branch no data of the test takes (coverage: never jumps)
NEVER = VALUE.replace(
    RETURN,
    '    if ctx.date.year < 1990:\n        return {"invested": invested, "worth": 0.0}\n' + RETURN,
)


def test_a_file_edited_after_the_build_hashed_it_is_never_recorded(workspace: Path) -> None:
    session = Session(workspace)
    target = next(t for t in session.workspace.targets.values() if t.entry_file.name == "value.py")
    key = code_key(session.hashes[target.name])  # the build's keys: the code as it is now
    assert snapshots.take(target, session.workspace).files  # as hashed: recorded
    path = target.entry_file
    path.write_text(path.read_text() + "\nEDITED = 1\n")  # saved while the build runs
    with pytest.raises(ValueError, match="not the code the build hashed"):
        snapshots.take(target, session.workspace)
    backend = open_backend("sqlite", path=workspace / ".btbuild" / "cache.db")
    snapshots.remember(backend, key, target, session.workspace)
    assert snapshots.recall(backend, key) is None  # a missing snapshot: unproven, re-run
    session.close()


def test_a_snapshot_is_the_code_of_its_key_only_when_it_hashes_to_it(workspace: Path) -> None:
    """Recorded code stands for a code key only if it hashes to that key: a comment does not
    change the key, any other edit does (then coverage would trace the wrong sources)."""
    session = Session(workspace)
    for target in session.workspace.targets.values():
        key = code_key(session.hashes[target.name])
        snapshot = snapshots.take(target, session.workspace)
        with snapshots.materialized(snapshot, session.workspace, target) as (old_ws, before):
            assert snapshots.is_code_of(key, old_ws, before), target.label
            before.entry_file.write_text(before.entry_file.read_text() + "\n# a comment\n")
            assert snapshots.is_code_of(key, old_ws, before)
            before.entry_file.write_text(before.entry_file.read_text() + "\nprint(1)\n")
            assert not snapshots.is_code_of(key, old_ws, before)
            before.entry_file.write_text("def broken(:\n")
            assert not snapshots.is_code_of(key, old_ws, before)
    session.close()


def test_a_recorded_snapshot_of_other_code_is_no_evidence_for_a_build(
    workspace: Path, run_cli: Any
) -> None:
    """The registry entry of the old code replaced by the new code (well-formed: a damaged or
    foreign entry): the change looked like no change at all, and an edit behind a branch no
    data takes was `cosmetic`. It is `unproven` now, and the cells run."""
    build = ["--workspace", str(workspace), "build", "//...", "--date", "2024-01-04"]
    code, _report = run_cli(*build, "--format", "json")
    assert code == 0
    with open_backend("sqlite", path=workspace / ".btbuild" / "cache.db") as backend:
        old_key = backend.get_cell("value", "2024-01-04").code_hash
    (workspace / "calculations" / "book" / "value.py").write_text(NEVER)
    session = Session(workspace)
    target = session.workspace.targets["value"]
    assert session.hashes[target.name]  # the new code, hashed as a build hashes it
    new = snapshots.take(target, session.workspace)
    packed = json.dumps({"entry": new.entry, "files": new.files}, sort_keys=True).encode()
    with open_backend("sqlite", path=workspace / ".btbuild" / "cache.db") as backend:
        entry = base64.b64encode(zlib.compress(packed)).decode()
        backend.put_sim_hash(f"code:{old_key}", snapshots.SNAPSHOT_VERSION, entry)
    session.close()
    code, report = run_cli(*build, "--format", "json")
    assert code == 0
    value = [cell for cell in report["cells"] if cell["label"] == "//book:value"]
    assert value and all(cell["status"] == "ran" for cell in value), value
    assert all("not the code of its key" in cell["detail"] for cell in value), value


def _start(root: Path, *argv: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "btbuild", "--workspace", str(root), *argv]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)


def _run(root: Path, *argv: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "btbuild", "--workspace", str(root), *argv]
    return subprocess.run(command, capture_output=True, timeout=300)


def _value_results(root: Path) -> dict[str, str | None]:
    with open_backend("sqlite", path=root / ".btbuild" / "cache.db") as backend:
        days = ("2024-01-02", "2024-01-03", "2024-01-04")
        return {day: getattr(backend.get_cell("value", day), "result_hash", None) for day in days}


def test_snapshots_recorded_by_two_builders_and_a_killed_one_are_the_code_or_missing(
    workspace: Path, tmp_path: Path
) -> None:
    """Two real builders record the code at once while a third is SIGKILLed mid-build: the
    recorded snapshot is missing or hashes to its key, and the next change's build ends with
    the results of a clean build of the new code."""
    clean = tmp_path / "clean"
    shutil.copytree(workspace, clean)
    argv = ["build", "//...", "--date", "2024-01-04"]
    builders = [_start(workspace, *argv) for _ in range(3)]
    time.sleep(1.0)
    os.killpg(builders[2].pid, signal.SIGKILL)
    assert [builder.wait(timeout=300) for builder in builders[:2]] == [0, 0]
    builders[2].wait(timeout=30)
    session = Session(workspace)
    target = session.workspace.targets["value"]
    key = code_key(session.hashes[target.name])
    with open_backend("sqlite", path=workspace / ".btbuild" / "cache.db") as backend:
        snapshot = snapshots.recall(backend, key)
    if snapshot is not None:
        with snapshots.materialized(snapshot, session.workspace, target) as (old_ws, before):
            assert snapshots.is_code_of(key, old_ws, before)
    session.close()
    for root in (workspace, clean):
        (root / "calculations" / "book" / "value.py").write_text(NEVER.replace("1990", "2024 + 1"))
    assert _run(workspace, *argv).returncode == 0
    assert _run(clean, *argv, "--force").returncode == 0
    assert _value_results(workspace) == _value_results(clean)
