"""A changed constant whose effect depends on the range of the data is never proven by samples
(btbuild/sim/constants.py).

Red team 24, end to end (100 users, ``replay_users = 10``): ``tier = "top" if worth > 401300``
-> ``> 401500`` (one stored user-date between the two, on a date the replay did not sample),
and ``sum(every[:309])`` -> ``[:310]`` in a per_date target (310 values on one unsampled date;
no fabricated world reaches that many): every changed line ran, every branch went both ways,
the outputs agreed, both were skipped as cosmetic, and ``build --force`` stored other values.
Now both are ``unproven`` and re-run. The rule is by class, not by example: every position
where a constant selects a range of the data, in either direction (added, removed, moved).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_change_coverage import LAYER, version

from btbuild.sim.changes import code_change

BASE = """\
from layers.helpers import used

LIMIT = 500
BANDS = [(0.25, "low"), (0.5, "mid")]


class Fees:
    RATE = 0.01


def fee(x, rate=0.002):
    return x * rate


def calc(ctx):
    worth = used(ctx.user["portfolio"]["cash"])
    values = sorted(p["quantity"] for p in ctx.user["portfolio"]["positions"])
    cap = 300
    tier = "top" if worth > 401300 else "plain"
    band = next((name for edge, name in BANDS if worth < edge), "high")
    return {
        "tier": tier,
        "band": band,
        "top": sum(values[:250]),
        "first": values[:cap],
        "capped": min(worth, 1000000),
        "vip": ctx.user.id == "u000099",
        "fee": fee(worth) + worth * Fees.RATE,
        "big": len(values) > LIMIT,
        "far": values[300] if len(values) > 300 else None,
        "days": 1,
    }
"""

# each edit changes one constant in a range-selecting position: (old text, new text)
FLAGGED = {
    "a threshold in a comparison": ("worth > 401300", "worth > 401500"),
    "a cap in a slice": ("values[:250]", "values[:260]"),
    "a cap removed": ("sum(values[:250])", "sum(values)"),
    "a cap in a local name read by a slice": ("cap = 300", "cap = 320"),
    "a cap of a builtin call": ("min(worth, 1000000)", "min(worth, 1200000)"),
    "a string compared with": ('"u000099"', '"u000098"'),
    "a module-level limit": ("LIMIT = 500", "LIMIT = 600"),
    "a band table's edge": ('(0.25, "low")', '(0.3, "low")'),
    "a class attribute": ("RATE = 0.01", "RATE = 0.012"),
    "a default argument": ("rate=0.002", "rate=0.003"),
    "an index beyond the fabricated lists": ("values[300] if", "values[301] if"),
    "a threshold moved onto a computed value": ("worth > 401300", "worth * 1.1 > 401300"),
    "a comparison moved across its constant": ("worth > 401300", "worth >= 401300"),
    "a count's comparison moved across it": (
        "values[300] if len(values) > 300",
        "values[300] if len(values) >= 300",
    ),
}

# refactors that move or regroup constants, and constants that are output values
KEPT = {
    "a threshold moved into a named constant": (
        ("LIMIT = 500\n", "LIMIT = 500\nTOP = 401300\n"),
        ("worth > 401300", "worth > TOP"),
    ),
    "an output value": (('"days": 1', '"days": 2'),),
    "a comparison turned around": (("worth > 401300", "401300 < worth"),),
    "a negated comparison, branches swapped": (
        ('"top" if worth > 401300 else "plain"', '"plain" if worth <= 401300 else "top"'),
    ),
    "a comparison under not": (('"top" if worth > 401300', '"top" if not worth <= 401300'),),
    "a counter's zero": (("cap = 300", "cap = 300\n    seen = 0"),),
    "a small index": (('"tier": tier', '"tier": tier, "one": values[1:][0] if values else 0'),),
}


def _change(tmp_path: Path, *pairs: tuple[str, str]) -> tuple[str, ...]:
    new = BASE
    for old_text, new_text in pairs:
        assert new.count(old_text) == 1, old_text
        new = new.replace(old_text, new_text)
    change = code_change(version(tmp_path / "a", BASE, LAYER), version(tmp_path / "b", new, LAYER))
    return change.constants


@pytest.mark.parametrize("case", sorted(FLAGGED))
def test_a_changed_range_selecting_constant_is_unproven(tmp_path: Path, case: str) -> None:
    reasons = _change(tmp_path, FLAGGED[case])
    assert reasons, case
    assert (
        reasons[0].startswith(("unproven: the constant ", "unproven: the comparison "))
        and "calculations/calc.py:" in reasons[0]
    )


@pytest.mark.parametrize("case", sorted(KEPT))
def test_constants_moved_or_output_values_ask_for_nothing(tmp_path: Path, case: str) -> None:
    assert _change(tmp_path, *KEPT[case]) == (), case


def test_the_reason_names_the_constant_and_its_line(tmp_path: Path) -> None:
    reasons = _change(tmp_path, ("worth > 401300", "worth > 401500"))
    assert reasons == (
        "unproven: the constant 401500 at calculations/calc.py:19 is new (a threshold, a cap "
        "or a limit changed: outputs agreeing on the sampled data do not show the values "
        "between)",
        "unproven: the constant 401300 at calculations/calc.py:19 of the old code is gone (a "
        "threshold, a cap or a limit changed: outputs agreeing on the sampled data do not show "
        "the values between)",
    )


def test_an_unreached_function_and_an_unread_constant_ask_for_nothing(tmp_path: Path) -> None:
    """A layer's other function, a module constant no reachable code reads."""
    text = BASE.replace("LIMIT = 500\n", "LIMIT = 500\nSPARE = 7\n")
    change = code_change(
        version(tmp_path / "a", text, LAYER),
        version(
            tmp_path / "b",
            text.replace("SPARE = 7", "SPARE = 8"),
            LAYER.replace("return x + 1", "return x + 1 if x > 5 else x"),
        ),
    )
    assert change.constants == ()


def test_a_layer_threshold_reached_by_the_entry_is_unproven(tmp_path: Path) -> None:
    layer = LAYER.replace("return x * 2", "return x * 2 if x < 1000 else x")
    change = code_change(
        version(tmp_path / "a", BASE, layer),
        version(tmp_path / "b", BASE, layer.replace("x < 1000", "x < 1200")),
    )
    assert change.constants and "layers/helpers.py:2" in change.constants[0]
    assert not change.empty


def test_arithmetic_on_constants_counts_as_its_value(tmp_path: Path) -> None:
    """``1000 + 1000`` adds no new literal but moves the threshold: it is the constant 2000;
    ``3600 * 24`` written as ``86400`` is no change."""
    assert _change(tmp_path / "a", ("worth > 401300", "worth > 401300 + 401300"))
    assert _change(tmp_path / "b", ("values[:250]", "values[:250 * 250]"))
    text = ("min(worth, 1000000)", "min(worth, 1000 * 1000)")
    assert _change(tmp_path / "c", text) == ()


MATCH = """\
def calc(ctx):
    n = len(ctx.user["portfolio"]["positions"])
    match n:
        case 1000:
            return "many"
        case m if m > 2000:
            return "more"
    return "few"
"""


def test_a_changed_case_pattern_or_guard_is_unproven(tmp_path: Path) -> None:
    for name, (old, new) in {
        "pattern": ("case 1000", "case 1001"),
        "guard": ("> 2000", "> 2100"),
    }.items():
        change = code_change(
            version(tmp_path / name / "a", MATCH, LAYER),
            version(tmp_path / name / "b", MATCH.replace(old, new), LAYER),
        )
        assert change.constants, name
