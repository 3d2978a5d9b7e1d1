"""End to end (red team 24): a threshold moved within a gap of the sample, and a cap above the
fabricated lists' sizes, in a workspace of 100 users with ``replay_users = 10``.

Before btbuild/sim/constants.py both edits were skipped as ``cosmetic`` (every changed line
ran, every branch went both ways, the replay and the fabricated worlds agreed) while
``build --force`` stored other values: u000069's tier on 2024-01-05 (its worth, 401172.46,
is the only stored one between 401100 and 401300, on a date the replay did not sample), and
the per_date sum of the 310 largest position values on 2024-01-03 (the only date before
2024-01-10 with 310 of them; no fabricated world has that many). Now both re-run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from btbuild.cli.main import main

ROOT_BUILD = """\
[workspace]
name = "gaps"
plugins = ["btbuild.plugins.market"]
start_date = "2024-01-02"

[storage]
path = ".btbuild/cache.db"

[plugin.market]
users = 100
instruments = 12
seed = 7
start = "2024-01-01"

[sim]
replay_dates = 2
replay_users = 10
"""

BOOK_BUILD = """\
[calculation.value]
entry = "value:value"
roots = ["portfolio", "prices"]
checks = { null_density = false, flatline = false }

[calculation.top]
entry = "top:top"
kind = "per_date"
deps = [":value"]
checks = { flatline = false }
"""

VALUE = """\
def value(ctx):
    prices = ctx.root("prices")
    book = ctx.user["portfolio"]
    invested = 0.0
    values = []
    for p in book["positions"]:
        bar = prices.get(p["symbol"])
        if bar is not None:
            invested += p["quantity"] * bar["close"]
            values.append(round(p["quantity"] * bar["close"], 2))
    worth = invested + book["cash"]
    tier = "top" if worth > 401100 else "plain"
    return {"worth": worth, "tier": tier, "values": values}
"""

TOP = """\
def top(ctx):
    values = ctx.dep("value") or {}
    every = sorted((x for v in values.values() for x in v["values"] if x > 10000), reverse=True)
    return {"n": len(every), "top": round(sum(every[:309]), 2)}
"""

DATE = ["--date", "2024-01-10"]


def _cli(capsys: Any, root: Path, *args: str) -> Any:
    capsys.readouterr()
    code = main(["--workspace", str(root), *args])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def _statuses(report: Any, label: str) -> set[tuple[str, str]]:
    return {
        (cell["status"], cell["reason"])
        for cell in report["cells"]
        if cell["label"] == label and cell["status"] != "impossible"
    }


def test_a_moved_threshold_and_a_raised_cap_re_run(tmp_path: Path, capsys: Any) -> None:
    root = tmp_path / "ws"
    (root / "calculations" / "book").mkdir(parents=True)
    (root / "BUILD.toml").write_text(ROOT_BUILD)
    (root / "calculations" / "book" / "BUILD.toml").write_text(BOOK_BUILD)
    value, top = (
        root / "calculations" / "book" / "value.py",
        root / "calculations" / "book" / "top.py",
    )
    value.write_text(VALUE)
    top.write_text(TOP)
    _cli(capsys, root, "build", "//...", *DATE, "--format", "json")

    value.write_text(VALUE.replace("worth > 401100", "worth > 401300"))
    report = _cli(capsys, root, "build", "//...", *DATE, "--format", "json")
    assert _statuses(report, "//book:value") == {("ran", "code_changed")}
    shown = _cli(capsys, root, "show", "//book:value", "--date", "2024-01-05", "--format", "json")
    assert 401100 < shown["value"]["u000069"]["worth"] <= 401300  # the user in the gap
    assert shown["value"]["u000069"]["tier"] == "plain"  # the new code's, not the stale "top"

    top.write_text(TOP.replace("every[:309]", "every[:310]"))
    report = _cli(capsys, root, "build", "//...", *DATE, "--format", "json")
    assert _statuses(report, "//book:top") == {("ran", "code_changed")}
    values = _cli(capsys, root, "show", "//book:value", "--date", "2024-01-03", "--format", "json")
    every = sorted(
        (x for v in values["value"].values() for x in v["values"] if x > 10000), reverse=True
    )
    assert len(every) == 310  # the date where the cap matters
    shown = _cli(capsys, root, "show", "//book:top", "--date", "2024-01-03", "--format", "json")
    assert shown["value"] == {"n": 310, "top": round(sum(every[:310]), 2)}
