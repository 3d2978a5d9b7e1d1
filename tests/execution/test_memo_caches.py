"""Module-level memo caches are ordinary, pure calculation code: a dict filled on first use
per key, a lazily loaded table, ``functools.lru_cache``. They change module-level state between
users and between cells, yet never what a call returns, so a build with them must succeed
and store exactly what builds of one target at a time store (real
workspaces: quant code caches rates, calendars and models this way all the time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.execution.conftest import make_workspace

MEMO_VALUE = """\
import functools

_RATES = {}  # symbol -> rate, filled on first use


def rate(symbol):
    if symbol not in _RATES:
        _RATES[symbol] = 1.0 + 0.25 * (ord(symbol[0]) - ord("A"))
    return _RATES[symbol]


@functools.lru_cache(maxsize=None)
def weight(quantity):
    return 1.0 if quantity < 10 else 0.5


class Book:
    seen = {}  # class-level cache: quantity -> bucket

    def bucket(self, quantity):
        return self.seen.setdefault(quantity, quantity // 5)


BOOK = Book()


def value(ctx):
    prices = ctx.root("prices")
    return sum(
        p["quantity"] * prices[p["symbol"]]["close"] * rate(p["symbol"]) * weight(p["quantity"])
        + BOOK.bucket(p["quantity"])
        for p in ctx.user["portfolio"]["positions"]
    )
"""

MEMO_LEVEL = """\
_LEVELS = {}  # day -> level, filled on first use (a per_date memo keyed by the cell's date)


def level(ctx):
    day = ctx.date.isoformat()
    if day not in _LEVELS:
        _LEVELS[day] = round(sum(v["close"] for v in ctx.root("prices").values()), 6)
    return _LEVELS[day]
"""


def _results(ws, names, days):
    with ws.backend() as backend:
        return {(n, d): backend.read_result(n, d) for n in names for d in days}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_memo_caches_build_and_store_what_fresh_processes_compute(tmp_path: Path, jobs: str):
    days = ["2024-01-01", "2024-01-02", "2024-01-03"]
    ws = make_workspace(tmp_path / "ws")
    ws.write("calculations/pricing/calcs.py", MEMO_VALUE)
    ws.write("calculations/pricing/levels.py", MEMO_LEVEL)
    report = ws.build("//...", "--jobs", jobs, date=days[-1])
    assert report["summary"]["failed"] == 0 and report["summary"]["blocked"] == 0, report
    # one target at a time, forced, in worker processes: other cells before each cell
    alone = make_workspace(tmp_path / "alone")
    alone.write("calculations/pricing/calcs.py", MEMO_VALUE)
    alone.write("calculations/pricing/levels.py", MEMO_LEVEL)
    for day in days:
        for label in ("//pricing:value", "//pricing:price_level"):
            code, _out, err = alone.cli("build", label, "--date", day, "--force", "--jobs", "2")
            assert code == 0, err
    names = ["value", "price_level"]
    assert _results(ws, names, days) == _results(alone, names, days)
    assert ws.build("//...", date=days[-1])["summary"]["ran"] == 0


def test_two_targets_of_one_memoizing_module_build_and_agree(tmp_path: Path) -> None:
    """Two targets whose entry is the same module (the memo caches above): a fresh import for
    one gives the other a fresh module too; both store what the module computes."""
    ws = make_workspace(tmp_path / "ws")
    ws.write("calculations/pricing/calcs.py", MEMO_VALUE)
    build = (ws.root / "calculations/pricing/BUILD.toml").read_text()
    ws.write(
        "calculations/pricing/BUILD.toml",
        build + '\n[calculation.twin]\nentry = "calcs:value"\nroots = ["portfolio", "prices"]\n',
    )
    report = ws.build("//pricing:value", "//pricing:twin", date="2024-01-03")
    assert report["summary"]["failed"] == 0, report
    with ws.backend() as backend:
        for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
            assert backend.read_result("twin", day) == backend.read_result("value", day)
