"""The corpus' JSON Lines data: margin accounts (with short positions) and their quotes.

Deterministic (``random.Random`` with fixed seeds), written for every weekday of a range:
``data/quotes/<date>.jsonl`` (date scope: one line per symbol) and ``data/accounts/<date>.jsonl``
(user scope: one line per account, sorted by id). Accounts keep their positions from day to
day and trade now and then; about a third of the lines are short (negative units), some
accounts are net short, and cash is set so that margin levels spread from call to ok.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ACCOUNTS = 40
SYMBOLS = 20
FIRST = date(2024, 1, 1)


def _symbols() -> list[str]:
    rng = random.Random("symbols")
    names: list[str] = []
    while len(names) < SYMBOLS:
        name = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
        if name not in names:
            names.append(name)
    return names


def _weekdays(first: date, last: date) -> list[date]:
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [day for day in days if day.weekday() < 5]


def _quotes(days: list[date]) -> dict[date, dict[str, dict[str, float]]]:
    rng = random.Random("quotes")
    symbols = _symbols()
    px = {s: rng.uniform(5.0, 300.0) for s in symbols}
    borrow = {s: round(rng.choice([0.0025, 0.005, 0.01, 0.08]), 4) for s in symbols}
    out = {}
    for day in days:
        for s in symbols:
            px[s] *= 1.0 + rng.gauss(0.0005, 0.025)
        out[day] = {s: {"px": round(px[s], 4), "borrow": borrow[s]} for s in symbols}
    return out


def _accounts(days: list[date], quotes: dict[date, Any]) -> dict[date, dict[str, Any]]:
    rng = random.Random("accounts")
    symbols = _symbols()
    books: dict[str, dict[str, Any]] = {}
    first = quotes[days[0]]
    for n in range(1, ACCOUNTS + 1):
        bias = rng.choice([0.15, 0.3, 0.3, 0.5, 0.9])  # share of short lines; 0.9: net short
        lines = {}
        for symbol in rng.sample(symbols, rng.randint(2, 8)):
            units = rng.randint(10, 900)
            lines[symbol] = -units if rng.random() < bias else units
        gross = sum(abs(u) * first[s]["px"] for s, u in lines.items())
        net = sum(u * first[s]["px"] for s, u in lines.items())
        ratio = rng.uniform(0.12, 0.9)  # equity / gross on the first day
        books[f"acct{n:03d}"] = {"cash": round(gross * ratio - net, 2), "lines": lines}
    out: dict[date, dict[str, Any]] = {}
    for day in days:
        for book in books.values():
            if rng.random() < 0.2:  # a trade: resize, flip or open a line
                symbol = rng.choice(symbols)
                book["lines"][symbol] = rng.choice([-1, 1]) * rng.randint(10, 900)
        out[day] = {
            user: {
                "cash": book["cash"],
                "currency": "USD",
                "positions": [
                    {"symbol": s, "units": u, "opened": days[0].isoformat()}
                    for s, u in sorted(book["lines"].items())
                ],
            }
            for user, book in sorted(books.items())
        }
    return out


def write_data(root: Path, last: date) -> None:
    """Write ``root/data/{quotes,accounts}/<date>.jsonl`` for every weekday up to ``last``."""
    days = _weekdays(FIRST, last)
    quotes = _quotes(days)
    accounts = _accounts(days, quotes)
    for name in ("quotes", "accounts"):
        (root / "data" / name).mkdir(parents=True, exist_ok=True)
    for day in days:
        lines = [json.dumps({"key": s, "value": v}) for s, v in quotes[day].items()]
        (root / "data" / "quotes" / f"{day.isoformat()}.jsonl").write_text("\n".join(lines) + "\n")
        lines = [json.dumps({"user": u, "record": r}) for u, r in accounts[day].items()]
        (root / "data" / "accounts" / f"{day.isoformat()}.jsonl").write_text(
            "\n".join(lines) + "\n"
        )
