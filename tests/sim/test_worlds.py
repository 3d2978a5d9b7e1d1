"""Adversarial behaviour changes the old worlds could not see, one per class of issue 11.

Each calculation is written so that its bug shows only in one kind of state: a value between
two thresholds, a list of exactly a literal's length, day 4+ of a historical chain, more than
five users, a book holding long *and* short positions. ``verify`` must call every bug a
behaviour change, and the behaviour-preserving rewrite of the same code cosmetic.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sim_helpers import ROOT_BUILD

from btbuild.session import Session
from btbuild.sim.verify import BEHAVIOUR_CHANGED, COSMETIC, VerifyOptions, compare_workspaces
from btbuild.workspace.config import load_workspace

BUILD = """\
[calculation.cash_band]
entry = "cash_band:cash_band"
roots = ["portfolio"]

[calculation.busy]
entry = "busy:busy"
roots = ["trades"]

[calculation.streak]
entry = "streak:streak"
roots = ["portfolio"]
historical = true

[calculation.worth]
entry = "worth:worth"
roots = ["portfolio", "prices"]

[calculation.leaders]
entry = "leaders:leaders"
kind = "per_date"
deps = [":worth"]

[calculation.gross]
entry = "gross:gross"
roots = ["portfolio", "prices"]
"""

CODE = {
    "cash_band": """\
BANDS = [(250_000.0, "small"), (2_500_000.0, "medium")]


def cash_band(ctx):
    cash = ctx.user["portfolio"]["cash"]
    for limit, name in BANDS:
        if cash < limit:
            return name
    return "large"
""",
    "busy": """\
def busy(ctx):
    trades = ctx.user["trades"] or []
    return len(trades) >= 5
""",
    "streak": """\
def streak(ctx):
    before = ctx.previous
    days = 1 + (before["days"] if before else 0)
    return {"days": days}
""",
    "worth": """\
def worth(ctx):
    prices = ctx.root("prices")
    book = ctx.user["portfolio"]
    held = sum(p["quantity"] * prices[p["symbol"]]["close"] for p in book["positions"])
    return round(held + book["cash"], 2)
""",
    "leaders": """\
def leaders(ctx):
    worth = ctx.dep("worth") or {}
    ranked = sorted(worth, key=lambda user: (-worth[user], user))
    return ranked[:10]
""",
    "gross": """\
def gross(ctx):
    prices = ctx.root("prices")
    longs = shorts = 0.0
    for p in ctx.user["portfolio"]["positions"]:
        value = p["quantity"] * max(prices[p["symbol"]]["close"], 0.0)
        if value > 0:
            longs += value
        else:
            shorts -= value
    return round(longs + shorts, 2)
""",
}

BUGS = {
    "cash_band": ("band table edited", "250_000.0", "260_000.0"),
    "busy": ("< against a small count", "len(trades) >= 5", "len(trades) > 5"),
    "streak": (
        "carry-forward capped",
        'before["days"] if before',
        'min(before["days"], 3) if before',
    ),
    "leaders": ("top-5 instead of top-10", "ranked[:10]", "ranked[:5]"),
    "gross": ("net instead of gross", "round(longs + shorts, 2)", "round(abs(longs - shorts), 2)"),
}

REFACTORS = {
    "cash_band": (
        "band lookup with next()",
        """    for limit, name in BANDS:
        if cash < limit:
            return name
    return "large\"""",
        """    return next((name for limit, name in BANDS if cash < limit), "large")""",
    ),
    "busy": ("count compared the other way", "len(trades) >= 5", "not len(trades) < 5"),
    "streak": (
        "previous read with get()",
        'days = 1 + (before["days"] if before else 0)',
        'days = (before or {}).get("days", 0) + 1',
    ),
    "leaders": (
        "heapq instead of sorted",
        """    ranked = sorted(worth, key=lambda user: (-worth[user], user))
    return ranked[:10]""",
        """    import heapq

    return heapq.nsmallest(10, worth, key=lambda user: (-worth[user], user))""",
    ),
    "gross": (
        "abs() instead of two sums",
        """    longs = shorts = 0.0
    for p in ctx.user["portfolio"]["positions"]:
        value = p["quantity"] * max(prices[p["symbol"]]["close"], 0.0)
        if value > 0:
            longs += value
        else:
            shorts -= value
    return round(longs + shorts, 2)""",
        """    values = (
        p["quantity"] * max(prices[p["symbol"]]["close"], 0.0)
        for p in ctx.user["portfolio"]["positions"]
    )
    return round(sum((abs(v) for v in values), 0.0), 2)""",
    ),
}


def write(root: Path, code: dict[str, str]) -> Path:
    package = root / "calculations" / "adv"
    package.mkdir(parents=True)
    (root / "BUILD.toml").write_text(ROOT_BUILD)
    (package / "BUILD.toml").write_text(BUILD)
    for name, text in code.items():
        (package / f"{name}.py").write_text(text)
    return root


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("adv") / "base", CODE)


def judge(base: Path, folder: Path, name: str, old: str, new: str) -> object:
    code = dict(CODE)
    assert old in code[name], f"{name}: edit does not apply"
    code[name] = code[name].replace(old, new)
    edited = write(folder, code)
    report = compare_workspaces(
        Session(edited), load_workspace(base), VerifyOptions(base="adv", search_seconds=0.3)
    )
    (change,) = report.changed
    return change


@pytest.mark.parametrize("name", sorted(BUGS))
def test_bug_is_a_behaviour_change(base: Path, tmp_path: Path, name: str) -> None:
    _description, old, new = BUGS[name]
    change = judge(base, tmp_path / "edited", name, old, new)
    assert change.verdict == BEHAVIOUR_CHANGED, (change.verdict, change.reason)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFACTORS))
def test_refactor_is_cosmetic(base: Path, tmp_path: Path, name: str) -> None:
    _description, old, new = REFACTORS[name]
    change = judge(base, tmp_path / "edited", name, old, new)
    assert change.verdict == COSMETIC, (change.verdict, change.reason, change.counterexample)


def test_base_copy_is_unchanged(base: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(base, copy)
    report = compare_workspaces(
        Session(copy), load_workspace(base), VerifyOptions(base="adv", search_seconds=0)
    )
    assert report.changed == []
