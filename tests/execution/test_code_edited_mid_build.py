"""Code edited while a build runs (a developer saves a file during a long build): the build
hashed the old code, so what it stores is labelled with the old code's key; a cell computed
by the new code must never be stored under it (put the edit back, and that result would be
up to date for the old code: stale, exit 0)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from btbuild.execution.loader import CalculationLoader
from tests.execution.conftest import Workspace, make_workspace

DAY = "2024-01-02"
EDITED = {
    "entry": ("calculations/pricing/calcs.py", "return sum(", "return 2 * sum("),
    "helper": ("calculations/pricing/rates.py", "RATE = 1.0", "RATE = 3.0"),
}


@pytest.mark.parametrize("where", ["entry", "helper"])
def test_a_file_edited_after_the_build_hashed_it_is_never_run_under_the_old_key(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    ws.write("calculations/pricing/rates.py", "RATE = 1.0\n")
    ws.edit("calculations/pricing/calcs.py", "def value(ctx):", "import rates\n\n\ndef value(ctx):")
    ws.edit("calculations/pricing/calcs.py", "return sum(", "return rates.RATE * sum(")
    path, old, new = EDITED[where]
    if where == "entry":
        old, new = "return rates.RATE * sum(", "return 2 * rates.RATE * sum("
    module = CalculationLoader.module
    state = {"edited": False}

    def edit_then_load(self: CalculationLoader, target: Any) -> Any:
        if target.name == "value" and not state["edited"]:
            state["edited"] = True  # saved in the editor after the build hashed the code
            ws.edit(path, old, new)
        return module(self, target)

    monkeypatch.setattr(CalculationLoader, "module", edit_then_load)
    code, out, err = ws.cli("build", "//pricing:value", "--date", DAY)
    monkeypatch.undo()
    assert state["edited"] and code == 1, err
    assert "changed after the build hashed it" in out, out
    ws.edit(path, new, old)  # the edit undone: the code the build hashed
    ws.build("//pricing:value", date=DAY)
    clean = make_workspace(tmp_path / "clean")
    clean.write("calculations/pricing/rates.py", "RATE = 1.0\n")
    clean.write(
        "calculations/pricing/calcs.py", (ws.root / "calculations/pricing/calcs.py").read_text()
    )
    clean.build("//pricing:value", date=DAY)
    for day in ("2024-01-01", DAY):
        assert ws.backend().read_result("value", day) == clean.backend().read_result("value", day)
