"""Outputs are compared exactly, as the build stores them: a change below one part in 10^9
is a behaviour change (before, floats were rounded to 9 significant digits and ``abs(x) <
1e-12`` was 0, so such a change was proven cosmetic and the old results kept: an incremental
build then differed from a clean build of the same code)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sim_helpers import VALUE

from btbuild.sim.canonical import canonical, same, stored_same
from btbuild.storage.canonical import canonical_bytes

X = 1234.56789


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (X, X + 1e-10 * X),  # a fee of 1e-10 of the notional
        (round(X / 7, 10), round(X / 7, 12)),
        (0.01234567891, 0.01234567892),  # a constant changed in its 10th digit
        (0.5, 0.5 + 1e-13),
        (1e-13, 0.0),  # under the old zero threshold
        ((0.1 + 0.2) + 0.3, 0.1 + (0.2 + 0.3)),  # a re-associated sum: a clean build stores it
        (2**60 + 1, 2**60),  # an int beyond 2**53 (was rounded like a float)
    ],
)
def test_a_change_below_one_part_in_a_billion_differs(old: float, new: float) -> None:
    assert canonical_bytes(old) != canonical_bytes(new)  # what a clean build stores differs
    assert not same(old, new) and canonical(old) != canonical(new)
    assert not stored_same(new, old)
    assert not same({"worth": old}, {"worth": new})


def test_what_the_build_stores_alike_is_the_same() -> None:
    assert stored_same(-0.0, 0.0) and same(-0.0, 0.0)  # the build stores -0.0 as 0.0
    assert stored_same({"b": [1.5, None], "a": "x"}, {"a": "x", "b": [1.5, None]})
    assert stored_same(json.loads(json.dumps(0.1 + 0.2)), 0.1 + 0.2)  # repr reads back
    assert not stored_same(1, 1.0) and not stored_same(True, 1)
    # a value the build refuses equals nothing, not even itself
    assert not stored_same(float("nan"), float("nan"))
    assert not stored_same((1, 2), [1, 2]) and not stored_same({1, 2}, {1, 2})
    assert canonical(10**4400) == {"$invalid": "int over 4300 digits"}


FEE = VALUE.replace(
    'return {"invested": invested, "worth": invested + book["cash"]}',
    'fee = invested * 1e-12\n    return {"invested": invested, "worth": invested + book["cash"] - fee}',
)


def test_a_fee_of_1e_12_of_the_notional_re_runs_the_cells(workspace: Path, run_cli) -> None:
    """The build's verdict: the replay of the real cells compares the stored bytes."""
    args = ["--workspace", str(workspace), "build", "//...", "--date", "2024-01-04"]
    code, _ = run_cli(*args, "--format", "json")
    assert code == 0
    (workspace / "calculations" / "book" / "value.py").write_text(FEE)
    code, report = run_cli(*args, "--format", "json")
    assert code == 0, report
    rows = [cell for cell in report["cells"] if cell["label"] == "//book:value"]
    assert rows and {(c["status"], c["reason"]) for c in rows} == {("ran", "code_changed")}
    assert all(c["detail"].startswith("behaviour_changed") for c in rows), rows
