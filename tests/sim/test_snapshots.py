"""The code recorded under a code key for the coverage of a later change
(btbuild/sim/snapshots.py) is the code that key was hashed from, never what the file holds
when the SimHash is registered."""

from __future__ import annotations

from pathlib import Path

import pytest

from btbuild.session import Session
from btbuild.sim import snapshots
from btbuild.sim.optimizer import code_key
from btbuild.storage import open_backend


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
