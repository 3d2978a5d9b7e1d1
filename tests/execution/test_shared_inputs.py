"""A calculation that changes its inputs in place (a user's record, a per_user dep's value)
changes nothing another calculation of the pass reads: every result equals the one computed
with that calculation alone, fused or not, whenever the change is found."""

from __future__ import annotations

from typing import Any

import pytest

from tests.execution.conftest import Workspace

BUILD = """
[calculation.a]
entry = "m:a"
roots = ["portfolio", "prices"]

{changer_table}[calculation.c]
entry = "m:c"
roots = ["portfolio"]
deps = [":a"]
"""

CHANGER = """[calculation.{changer}]
entry = "m:changer"
roots = ["portfolio"]
deps = [":a"]

"""

CODE = """
def a(ctx):
    return {"x": len(ctx.user["portfolio"]["positions"]), "tags": ["t"]}

def changer(ctx):  # changes its inputs in place, from user u010 on
    value, record = ctx.dep("a"), ctx.user["portfolio"]
    if ctx.user.id >= "u010":
        value["x"] = 99
        value["tags"].append("changed")
        record["positions"].append({"symbol": "ZZZ", "quantity": 0})
    return value["x"] + len(record["positions"])

def c(ctx):
    value, record = ctx.dep("a"), ctx.user["portfolio"]
    return [value["x"], len(value["tags"]), len(record["positions"])]
"""


def _results(ws: Workspace) -> dict[str, Any]:
    with ws.backend() as backend:
        return {t: backend.read_result(t, "2024-01-02") for t in ("a", "c")}


@pytest.fixture
def alone(tmp_path) -> dict[str, Any]:
    """c's and a's results without the changer."""
    from tests.execution.conftest import make_workspace

    ws = make_workspace(tmp_path / "alone")
    ws.write("calculations/m/BUILD.toml", BUILD.format(changer_table=""))
    ws.write("calculations/m/m.py", CODE)
    ws.build(date="2024-01-02")
    return _results(ws)


# "b" runs before "c" in a pass, "z" after it; late: found only at a sampled user
@pytest.mark.parametrize("late", [False, True])
@pytest.mark.parametrize("force", [False, True])  # --force: the dependents run fused with a
@pytest.mark.parametrize("changer", ["b", "z"])
def test_a_calculation_changing_its_inputs_changes_no_other_result(
    ws: Workspace,
    alone: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    changer: str,
    force: bool,
    late: bool,
) -> None:
    if late:  # the first users are checked, then every 4th: the change is found at u012
        from btbuild.execution import isolation

        monkeypatch.setattr(isolation, "VERIFY_FIRST", 3)
        monkeypatch.setattr(isolation, "VERIFY_EVERY", 4)
    table = CHANGER.format(changer=changer)
    ws.write("calculations/m/BUILD.toml", BUILD.format(changer_table=table))
    ws.write("calculations/m/m.py", CODE)
    if force:
        ws.build(date="2024-01-02")
    ws.build(*(["--force"] if force else []), date="2024-01-02")
    assert _results(ws) == alone
    with ws.backend() as backend:
        changed = backend.read_result(changer, "2024-01-02")
    # its own result is computed from its own inputs as if it ran alone
    assert changed["u001"] == 1 + 1 and changed["u010"] == 99 + 2


@pytest.mark.parametrize("force", [False, True])  # --force: fused with its dependents
def test_a_change_only_for_an_unsampled_user_is_found(
    ws: Workspace, alone: dict[str, Any], monkeypatch: pytest.MonkeyPatch, force: bool
) -> None:
    """Red team 24: the changer changes the inputs of u010 only, a user the sampled checks do
    not copy (the first 3, then every 4th): before, ``c`` (after it in the pass) stored for
    u010 a result computed from the changed record. Every user's shared inputs are now
    compared after its last cell (btbuild/execution/isolation.py)."""
    from btbuild.execution import isolation

    monkeypatch.setattr(isolation, "VERIFY_FIRST", 3)
    monkeypatch.setattr(isolation, "VERIFY_EVERY", 4)
    table = CHANGER.format(changer="b")
    ws.write("calculations/m/BUILD.toml", BUILD.format(changer_table=table))
    ws.write("calculations/m/m.py", CODE.replace('ctx.user.id >= "u010"', 'ctx.user.id == "u010"'))
    if force:
        ws.build(date="2024-01-02")
    ws.build(*(["--force"] if force else []), date="2024-01-02")
    assert _results(ws) == alone
    with ws.backend() as backend:
        changed = backend.read_result("b", "2024-01-02")
    assert changed["u010"] == 99 + 2 and changed["u011"] == 1 + 1
