"""A tiny deterministic market with the shapes of docs/dev/market-data.md, for pipeline tests.

Not the real source plugin: just enough variety (empty portfolios, one-position users,
closed-out lines, losing and winning closes, weekends, days without insights) to drive every
demo calculation down its branches.
"""

from __future__ import annotations

import datetime
import math
import random
from typing import Any

SECTORS = ("tech", "energy", "finance", "health", "consumer", "industrial")


class DemoMarket:
    def __init__(
        self,
        seed: int = 7,
        symbols: int = 12,
        users: int = 24,
        start: datetime.date = datetime.date(2024, 1, 1),
    ):
        self.seed = seed
        self.start = start
        self.symbols = {f"S{i:03d}": SECTORS[i % len(SECTORS)] for i in range(symbols)}
        self.user_ids = [f"u{i:06d}" for i in range(1, users + 1)]
        self._prices: dict[datetime.date, dict[str, Any]] = {}

    def available(self, source: str, day: datetime.date) -> bool:
        if day < self.start or day.weekday() >= 5:
            return False
        return source != "insights" or day.toordinal() % 5 != 0

    def date_record(self, source: str, day: datetime.date) -> Any:
        if not self.available(source, day):
            return None
        if source == "prices":
            return self._quotes(day)
        if source == "benchmarks":
            quotes = self._quotes(day)
            levels: dict[str, list[float]] = {}
            for quote in quotes.values():
                levels.setdefault(quote["sector"], []).append(quote["close"])
            index = {s: {"level": round(sum(v) / len(v), 4)} for s, v in levels.items()}
            index["market"] = {
                "level": round(sum(q["close"] for q in quotes.values()) / len(quotes), 4)
            }
            return index
        if source == "insights":
            rng = self._rng("insights", day)
            return {
                s: {
                    "sentiment": round(rng.uniform(-1, 1), 3),
                    "rating": rng.choice(["buy", "hold", "sell"]),
                }
                for s in self.symbols
            }
        raise KeyError(source)

    def user_record(self, source: str, user_id: str, day: datetime.date) -> Any:
        if not self.available(source, day):
            return None
        number = int(user_id[1:])
        rng = self._rng(f"{source}:{user_id}", day)
        symbols = sorted(self.symbols)
        if source == "portfolio":
            if number % 8 == 0:
                return {"cash": 1000.0, "positions": []}
            held = [symbols[number % len(symbols)]] if number % 8 == 1 else rng.sample(symbols, 4)
            positions = [
                {
                    "symbol": s,
                    "quantity": float(rng.randint(1, 50)),
                    "avg_cost": round(rng.uniform(20, 200), 2),
                    "opened": "2023-12-01",
                }
                for s in held
            ]
            if number % 5 == 0:
                positions.append(
                    {
                        "symbol": symbols[0],
                        "quantity": 0.0,
                        "avg_cost": 10.0,
                        "opened": "2023-11-01",
                    }
                )
            return {"cash": round(rng.uniform(0, 5000), 2), "positions": positions}
        if source == "trades":
            trades = []
            for _ in range(rng.randint(0, 3) if number % 3 else 0):
                side = rng.choice(["buy", "sell"])
                closing = side == "sell" and rng.random() < 0.7
                trades.append(
                    {
                        "symbol": rng.choice(symbols),
                        "side": side,
                        "quantity": float(rng.randint(1, 40)),
                        "price": round(rng.uniform(20, 200), 2),
                        "realized_pnl": round(rng.uniform(-500, 500), 2) if closing else None,
                        "holding_days": rng.randint(1, 60) if closing else None,
                    }
                )
            return trades
        raise KeyError(source)

    def _quotes(self, day: datetime.date) -> dict[str, Any]:
        if day not in self._prices:
            quotes = {}
            for index, (symbol, sector) in enumerate(sorted(self.symbols.items())):
                offset = (day - self.start).days
                drift = 0.002 * ((index % 5) - 2)
                wobble = math.sin(offset * (0.3 + index * 0.07)) * 0.05
                close = round(50.0 * (1 + index * 0.1) * math.exp(drift * offset + wobble), 4)
                quotes[symbol] = {
                    "close": close,
                    "open": close,
                    "high": close * 1.01,
                    "low": close * 0.99,
                    "volume": 1000 + index,
                    "sector": sector,
                }
            self._prices[day] = quotes
        return self._prices[day]

    def _rng(self, what: str, day: datetime.date) -> random.Random:
        return random.Random(f"{self.seed}:{what}:{day.isoformat()}")
