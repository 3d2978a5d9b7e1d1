"""The replay is evidence for a ``cosmetic`` skip only if it compares the new code with what
the OLD code stored. Another builder running the same new code overwrites sampled cells with
the new code's results while the replay runs: comparing the new code with those proves
nothing, so such a cell must be passed over (and the change is judged on the others), never
counted as a match."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from btbuild.session import Session  # noqa: E402
from btbuild.sim.optimizer import code_key  # noqa: E402
from btbuild.sim.replay import Replayer  # noqa: E402
from tests.execution.conftest import make_workspace  # noqa: E402

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]
EDITS = {  # a behaviour change of each kind of target
    "value": ("calculations/pricing/calcs.py", "return sum(", "return 2 * sum("),
    "price_level": ("calculations/pricing/levels.py", "return sorted(", "return 1 + max("),
}


@pytest.mark.parametrize("name", ["value", "price_level"])  # per_user, per_date
def test_a_cell_another_builder_rewrote_with_the_new_code_is_no_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    ws = make_workspace(tmp_path / "ws")
    ws.build(f"//pricing:{name}", date=DAYS[-1])
    old = code_key(Session(ws.root).hashes[name])
    ws.edit(*EDITS[name])
    other = make_workspace(tmp_path / "other")  # the other builder: the new code, its results
    other.edit(*EDITS[name])
    other.build(f"//pricing:{name}", date=DAYS[-1])
    session = Session(ws.root)
    assert session.hashes[name]  # the code replayed is the code hashed (as in a build's judge)
    target = session.workspace.targets[name]
    replayer = Replayer(session.workspace, session.plugins.root_sources(), session.backend)
    current_inputs = Replayer.current_inputs

    def rewritten_first(self: Replayer, target: Any, day: date, record: Any) -> Any:
        inputs = current_inputs(self, target, day, record)
        with other.backend() as theirs:  # the other builder commits the new code's result
            value = theirs.read_result(name, day.isoformat())
            components = theirs.get_cell(name, day.isoformat()).components
        lease = session.backend.acquire(name, day.isoformat(), "other-builder", 60)
        writer = session.backend.open_writer(lease, target.kind)
        writer.add(value)
        writer.commit(composite_hash="their-key", components=components, category="pricing")
        return inputs

    monkeypatch.setattr(Replayer, "current_inputs", rewritten_first)
    result = replayer.replay(
        target,
        lambda record: record.code_hash == old,
        date.fromisoformat(DAYS[0]),
        date.fromisoformat(DAYS[-1]),
    )
    session.close()
    assert result.counterexample is None  # nothing of the old code's was compared
    assert not result.replayed, result  # and nothing counts as a match: all passed over
    assert len(result.passed_over) == len(DAYS)
