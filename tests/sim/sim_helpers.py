"""Shared fixtures' data: a two-target workspace on the synthetic market, a git helper."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

ROOT_BUILD = """\
[workspace]
name = "simtest"
plugins = ["btbuild.plugins.market"]
start_date = "2024-01-02"

[storage]
path = ".btbuild/cache.db"

[execution]
min_items = 1000

[plugin.market]
users = 12
instruments = 12
seed = 7
start = "2024-01-01"
"""

BOOK_BUILD = """\
[calculation.value]
entry = "value:value"
roots = ["portfolio", "prices"]
checks = { null_density = false, flatline = false }

[calculation.total]
entry = "total:total"
kind = "per_date"
deps = [":value"]
checks = { flatline = false }
"""

VALUE = """\
def position_value(position, prices):
    bar = prices.get(position["symbol"])
    return 0.0 if bar is None else position["quantity"] * bar["close"]


def value(ctx):
    prices = ctx.root("prices")
    book = ctx.user["portfolio"]
    invested = sum(position_value(p, prices) for p in book["positions"])
    return {"invested": invested, "worth": invested + book["cash"]}
"""

TOTAL = """\
def total(ctx):
    values = ctx.dep("value") or {}
    return {"users": len(values), "worth": sum(v["worth"] for v in values.values())}
"""


def write_workspace(root: Path, value: str = VALUE, total: str = TOTAL) -> Path:
    (root / "calculations" / "book").mkdir(parents=True, exist_ok=True)
    (root / "BUILD.toml").write_text(ROOT_BUILD)
    (root / "calculations" / "book" / "BUILD.toml").write_text(BOOK_BUILD)
    (root / "calculations" / "book" / "value.py").write_text(value)
    (root / "calculations" / "book" / "total.py").write_text(total)
    return root


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def verify_json(run_cli: Any, repo: Path, *extra: str) -> tuple[int, Any]:
    """``btbuild verify --base HEAD`` of ``repo`` with a short search, as parsed JSON."""
    code, report = run_cli(
        "--workspace",
        str(repo),
        "verify",
        "--base",
        "HEAD",
        "--search-seconds",
        "0.2",
        "--format",
        "json",
        *extra,
    )
    return code, report
