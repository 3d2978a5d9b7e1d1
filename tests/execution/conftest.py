from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from btbuild.cli.main import main

USERS = [f"u{i:03d}" for i in range(1, 31)]
SYMBOLS = ["AAA", "BBB", "CCC"]
FIRST = date(2024, 1, 1)


def write_day(root: Path, day: date, *, price_bump: float = 0.0, users: list[str] = USERS) -> None:
    prices = root / "data" / "prices" / f"{day.isoformat()}.jsonl"
    prices.parent.mkdir(parents=True, exist_ok=True)
    offset = (day - FIRST).days
    prices.write_text(
        "".join(
            json.dumps({"key": s, "value": {"close": 10.0 + i + offset + price_bump}}) + "\n"
            for i, s in enumerate(SYMBOLS)
        )
    )
    portfolio = root / "data" / "portfolio" / f"{day.isoformat()}.jsonl"
    portfolio.parent.mkdir(parents=True, exist_ok=True)
    portfolio.write_text(
        "".join(
            json.dumps(
                {
                    "user": u,
                    "record": {"positions": [{"symbol": SYMBOLS[n % 3], "quantity": n + 1}]},
                }
            )
            + "\n"
            for n, u in enumerate(users)
        )
    )


ROOT_BUILD = """\
[workspace]
name = "t"
plugins = ["btbuild.plugins.jsonl"]
start_date = "2024-01-01"
{extra}
[execution]
min_items = 10
max_failure_rate = 0.1
max_attempts = 2

[plugin.jsonl.sources]
prices = "date"
portfolio = "user"
"""

PRICING_BUILD = """\
[calculation.value]
entry = "calcs:value"
roots = ["portfolio", "prices"]

[calculation.total]
entry = "totals:total"
kind = "per_date"
deps = [":value"]

[calculation.sign]
entry = "signs:sign"
kind = "per_date"
deps = [":total"]

[calculation.price_level]
entry = "levels:level"
kind = "per_date"
roots = ["prices"]
"""

CALCS = """\
def value(ctx):
    prices = ctx.root("prices")
    return sum(p["quantity"] * prices[p["symbol"]]["close"] for p in ctx.user["portfolio"]["positions"])
"""

TOTALS = """\
def total(ctx):
    values = ctx.dep("value")
    return {"users": len(values), "total": round(sum(values.values()), 6)}
"""

SIGNS = """\
def sign(ctx):
    return ctx.dep("total")["total"] > 0
"""

LEVELS = """\
def level(ctx):
    return sorted(v["close"] for v in ctx.root("prices").values())
"""


class Workspace:
    def __init__(self, root: Path):
        self.root = root

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.root / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new))

    def cli(self, *argv: str) -> tuple[int, str, str]:
        import contextlib
        import io

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--workspace", str(self.root), *argv])
        return code, out.getvalue(), err.getvalue()

    def build(self, *argv: str, date: str = "2024-01-03", expect: int | None = 0) -> dict[str, Any]:
        if not argv or argv[0].startswith("-"):
            argv = ("//...", *argv)
        code, out, err = self.cli("build", *argv, "--date", date, "--format", "json")
        if expect is not None:
            assert code == expect, err
        return json.loads(out)

    def cells(self, report: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
        return {(c["label"], c["date"]): (c["status"], c["reason"]) for c in report["cells"]}

    def backend(self) -> Any:
        from btbuild.storage import open_backend

        return open_backend("sqlite", path=self.root / ".btbuild" / "cache.db")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    # retries at once: tests/execution/test_backoff.py measures the back-off (default 10 s)
    return make_workspace(tmp_path / "ws", execution="retry_backoff = 0\n")


def make_workspace(root: Path, storage: str = "", execution: str = "") -> Workspace:
    """The pricing workspace over five days of JSONL data; ``storage`` is appended to the
    root BUILD.toml (e.g. a [storage] table), ``execution`` to its [execution] table."""
    w = Workspace(root)
    text = ROOT_BUILD.format(extra=storage)
    if execution:
        for line in execution.splitlines():  # a key given here replaces the template's
            key = line.partition("=")[0].strip()
            text = "".join(
                kept for kept in text.splitlines(keepends=True) if not kept.startswith(f"{key} =")
            )
        text = text.replace("[execution]\n", f"[execution]\n{execution}")
    w.write("BUILD.toml", text)
    w.write("calculations/pricing/BUILD.toml", PRICING_BUILD)
    w.write("calculations/pricing/calcs.py", CALCS)
    w.write("calculations/pricing/totals.py", TOTALS)
    w.write("calculations/pricing/levels.py", LEVELS)
    w.write("calculations/pricing/signs.py", SIGNS)
    for offset in range(5):
        write_day(root, FIRST + timedelta(days=offset))
    return w


@pytest.fixture
def day_writer() -> Callable[..., None]:
    return write_day
