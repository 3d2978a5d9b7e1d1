"""A deterministic synthetic market: the demo workspace's root data (docs/dev/market-data.md).

Settings (``[plugin.market]`` of the root BUILD.toml, every key optional)::

    users = 1000            # user ids u000001 .. u001000
    instruments = 300       # symbols, spread over six sectors
    seed = 0
    start = "2024-01-01"    # first date of the price paths; nothing is available before it
    revisions = { "2024-01-05" = 2 }  # re-ingest a date: its fingerprints change, not its data
    insights = true         # false: the insights source is never available

Every value is a pure function of (settings, date, user): a user's record is generated
directly from a stable hash of (seed, user, date) — never Python's ``hash()`` — so any
date/user is cheap to compute and identical in every process. Only the price paths are
sequential (geometric Brownian motion with sector drift); they are cached per process.

Portfolios evolve slowly: each user owns a few *slots*; a slot holds one symbol for an
epoch of 20-120 trading days, then rotates, so a user keeps most positions from one day to
the next. Trades are exactly the difference between yesterday's and today's portfolio.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import xxhash

from btbuild.plugins.config import PluginConfig
from btbuild.plugins.hookspecs import hookimpl
from btbuild.plugins.sources import RootSource

if TYPE_CHECKING:
    pass

PLUGIN = "market"
GENERATOR_VERSION = "market-1"  # bump whenever generated data changes: every fingerprint moves
SECTORS = ("tech", "energy", "finance", "health", "consumer", "industrial")
RATINGS = ("buy", "hold", "sell")
DEFAULTS: dict[str, Any] = {
    "users": 1000,
    "instruments": 300,
    "seed": 0,
    "start": "2024-01-01",
    "revisions": {},
    "insights": True,
}

_M64 = (1 << 64) - 1
_DT = 1.0 / 252.0


def _mix(x: int) -> int:
    """splitmix64's finalizer: a stable 64-bit hash of an int (cheap, process-independent)."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _stable(*parts: object) -> int:
    return xxhash.xxh3_64_intdigest("\x1f".join(map(str, parts)).encode())


@dataclass(frozen=True)
class MarketSettings:
    """The validated ``[plugin.market]`` table."""

    users: int = 1000
    instruments: int = 300
    seed: int = 0
    start: date = date(2024, 1, 1)
    revisions: tuple[tuple[date, int], ...] = ()
    insights: bool = True
    revision_of: dict[date, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.revision_of.update(self.revisions)

    @classmethod
    def from_config(cls, config: PluginConfig) -> MarketSettings:
        table = config.check_keys(PLUGIN, DEFAULTS)
        values = {**DEFAULTS, **table}

        def integer(key: str, minimum: int) -> int:
            value = values[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise config.error(
                    PLUGIN, f"{key} = {value!r} is invalid, expected an integer >= {minimum}"
                )
            return value

        start = values["start"]
        try:
            start = start if isinstance(start, date) else date.fromisoformat(str(start))
        except ValueError:
            raise config.error(
                PLUGIN, f'start = {start!r} is not a date like "2024-01-01"'
            ) from None
        revisions = []
        raw = values["revisions"]
        if not isinstance(raw, Mapping):
            raise config.error(
                PLUGIN, f'revisions = {raw!r} must be a table like {{ "2024-01-05" = 2 }}'
            )
        for key, rev in raw.items():
            try:
                day = date.fromisoformat(str(key))
            except ValueError:
                raise config.error(
                    PLUGIN, f'revisions key {key!r} is not a date like "2024-01-05"'
                ) from None
            if not isinstance(rev, int) or isinstance(rev, bool) or rev < 0:
                raise config.error(
                    PLUGIN, f"revisions.{key} = {rev!r} is invalid, expected an integer >= 0"
                )
            revisions.append((day, rev))
        if not isinstance(values["insights"], bool):
            raise config.error(
                PLUGIN, f"insights = {values['insights']!r} is invalid, expected true or false"
            )
        if not isinstance(values["seed"], int) or isinstance(values["seed"], bool):
            raise config.error(PLUGIN, f"seed = {values['seed']!r} is invalid, expected an integer")
        return cls(
            users=integer("users", 0),
            instruments=integer("instruments", 1),
            seed=values["seed"],
            start=start,
            revisions=tuple(sorted(revisions)),
            insights=values["insights"],
        )


class _Calendar:
    """Trading days (Monday-Friday) numbered from the first one on or after ``start``."""

    def __init__(self, start: date):
        self.monday = start - timedelta(days=start.weekday())
        first = start if start.weekday() < 5 else start + timedelta(days=7 - start.weekday())
        self.offset = self._raw(first)
        self._iso: dict[int, str] = {}

    def _raw(self, day: date) -> int:
        weeks, rest = divmod((day - self.monday).days, 7)
        return weeks * 5 + min(rest, 5)

    def index(self, day: date) -> int | None:
        """The trading-day index of ``day``, or None on a weekend or before the start."""
        if day.weekday() >= 5:
            return None
        t = self._raw(day) - self.offset
        return t if t >= 0 else None

    def day(self, t: int) -> date:
        weeks, rest = divmod(t + self.offset, 5)
        return self.monday + timedelta(days=weeks * 7 + rest)

    def iso(self, t: int) -> str:
        text = self._iso.get(t)
        if text is None:
            text = self._iso[t] = self.day(t).isoformat()
        return text


class Market:
    """The generator behind the five sources; one per settings value, shared per process."""

    _cache: dict[MarketSettings, Market] = {}
    _lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: MarketSettings) -> Market:
        with cls._lock:
            market = cls._cache.get(settings)
            if market is None:
                market = cls._cache[settings] = cls(settings)
            return market

    def __init__(self, settings: MarketSettings):
        self.settings = settings
        self.calendar = _Calendar(settings.start)
        self.base = _stable(GENERATOR_VERSION, settings.seed)
        self.symbols, self.sectors = _universe(settings.instruments)
        self.width = max(6, len(str(settings.users)))
        rng = random.Random(_stable(self.base, "instruments"))
        self.sector_drift = {s: rng.uniform(-0.08, 0.2) for s in SECTORS}
        self.vol = [rng.uniform(0.15, 0.6) for _ in self.symbols]
        # A few penny stocks keep tiny prices in the data, as real feeds have them.
        first = [
            rng.uniform(0.01, 1.0) if rng.random() < 0.03 else math.exp(rng.uniform(2.0, 6.0))
            for _ in self.symbols
        ]
        self._closes: list[list[float]] = [first]
        self._path_lock = threading.Lock()

    # -- prices -------------------------------------------------------------------------------

    def closes(self, t: int) -> list[float]:
        """Closing prices of trading day ``t`` (the path is extended and cached on demand)."""
        closes = self._closes
        if t < len(closes):
            return closes[t]
        with self._path_lock:
            sectors, vol, drift = self.sectors, self.vol, self.sector_drift
            sq = math.sqrt(_DT)
            while len(closes) <= t:
                step = len(closes)
                rng = random.Random(_stable(self.base, "path", step))
                market = rng.gauss(0.0, 1.0)
                sector_z = {s: rng.gauss(0.0, 1.0) for s in SECTORS}
                prev = closes[-1]
                closes.append(
                    [
                        prev[i]
                        * math.exp(
                            (drift[sectors[i]] - 0.5 * vol[i] ** 2) * _DT
                            + vol[i]
                            * sq
                            * (
                                0.4 * market
                                + 0.4 * sector_z[sectors[i]]
                                + 0.82 * rng.gauss(0.0, 1.0)
                            )
                        )
                        for i in range(len(prev))
                    ]
                )
        return closes[t]

    def prices(self, t: int) -> dict[str, dict[str, Any]]:
        close = self.closes(t)
        prev = self.closes(t - 1) if t > 0 else close
        rng = random.Random(_stable(self.base, "bars", t))
        out = {}
        for i, symbol in enumerate(self.symbols):
            open_ = prev[i] * math.exp(rng.gauss(0.0, 0.004))
            high = max(open_, close[i]) * (1.0 + abs(rng.gauss(0.0, 0.006)))
            low = min(open_, close[i]) * (1.0 - min(0.5, abs(rng.gauss(0.0, 0.006))))
            volume = int(rng.lognormvariate(11.0, 1.2))
            out[symbol] = {
                "close": close[i],
                "open": open_,
                "high": high,
                "low": low,
                "volume": volume,
                "sector": self.sectors[i],
            }
        return out

    def benchmarks(self, t: int) -> dict[str, dict[str, float]]:
        first, now = self.closes(0), self.closes(t)
        groups: dict[str, list[float]] = {s: [] for s in SECTORS}
        for i, sector in enumerate(self.sectors):
            groups[sector].append(now[i] / first[i])
        everything = [now[i] / first[i] for i in range(len(now))]
        levels = {s: {"level": 100.0 * sum(g) / len(g)} for s, g in groups.items() if g}
        levels["market"] = {"level": 100.0 * sum(everything) / len(everything)}
        return levels

    def insights(self, t: int) -> dict[str, dict[str, Any]]:
        rng = random.Random(_stable(self.base, "insights", t))
        out = {}
        for symbol in self.symbols:
            sentiment = max(-1.0, min(1.0, rng.gauss(0.0, 0.45)))
            rating = "buy" if sentiment > 0.25 else "sell" if sentiment < -0.25 else "hold"
            out[symbol] = {"sentiment": sentiment, "rating": rating}
        return out

    # -- users --------------------------------------------------------------------------------

    def user_id(self, n: int) -> str:
        return f"u{n:0{self.width}d}"

    def holdings(self, n: int, t: int) -> list[tuple[int, float, int, int]]:
        """User ``n``'s positions on day ``t`` as (symbol index, quantity, opened t, noise bits)."""
        u = _mix(self.base ^ (n * 0xD6E8FEB86659FD93))
        kind = u % 100
        slots = 0 if kind < 4 else 1 if kind < 10 else 2 + (u >> 8) % 14
        instruments = self.settings.instruments
        fractional = (u >> 16) % 5 == 0
        held = []
        for k in range(slots):
            # Slot k only picks symbols whose index is k modulo the slot count, so two slots
            # never hold the same symbol and every line of a portfolio is its own symbol.
            choices = (instruments - k + slots - 1) // slots
            if choices <= 0:
                break
            hk = _mix(u + k)
            period = 20 + hk % 100
            offset = (hk >> 8) % period
            epoch, age = divmod(t + offset, period)
            h = _mix(hk ^ epoch)
            symbol = k + slots * (h % choices)
            quantity = float(1 + (h >> 12) % 400)
            if fractional:
                quantity = quantity * ((h >> 24) % 1000 + 1) / 997.0
            if (h >> 40) % 8 == 0 and age >= period - 2:
                quantity = 0.0  # closed out: the line stays, empty, until the slot rotates
            held.append((symbol, quantity, t - age, h >> 44))
        return held

    def portfolio(self, n: int, t: int) -> dict[str, Any]:
        u = _mix(self.base ^ (n * 0xD6E8FEB86659FD93))
        if (u >> 20) % 20 == 0:
            cash = 0.0
        else:
            base_cash = 1000.0 + (u >> 28) % 99000
            cash = round(base_cash * (0.8 + 0.4 * (_mix(u ^ t) % 10007) / 10007.0), 2)
        return {
            "cash": cash,
            "positions": [
                {
                    "symbol": self.symbols[symbol],
                    "quantity": quantity,
                    "avg_cost": self._cost(symbol, opened, noise),
                    "opened": self.calendar.iso(opened),
                }
                for symbol, quantity, opened, noise in self.holdings(n, t)
            ],
        }

    def _cost(self, symbol: int, opened: int, noise: int) -> float:
        # Positions opened before the path starts are priced at its first day.
        return self.closes(max(opened, 0))[symbol] * (0.98 + (noise % 4001) / 100000.0)

    def trades(self, n: int, t: int) -> list[dict[str, Any]]:
        if t == 0:
            return []
        today = {s: (q, o, z) for s, q, o, z in self.holdings(n, t)}
        yesterday = {s: (q, o, z) for s, q, o, z in self.holdings(n, t - 1)}
        closes = self.closes(t)
        out = []
        for symbol, (quantity, opened, noise) in yesterday.items():
            now = today.get(symbol)
            if quantity > 0 and (now is None or now[0] == 0.0 or now[1] != opened):
                price = closes[symbol]
                out.append(
                    {
                        "symbol": self.symbols[symbol],
                        "side": "sell",
                        "quantity": quantity,
                        "price": price,
                        "realized_pnl": quantity * (price - self._cost(symbol, opened, noise)),
                        "holding_days": (self.calendar.day(t) - self.calendar.day(opened)).days,
                    }
                )
        for symbol, (quantity, opened, noise) in today.items():
            before = yesterday.get(symbol)
            if quantity > 0 and (before is None or before[1] != opened):
                out.append(
                    {
                        "symbol": self.symbols[symbol],
                        "side": "buy",
                        "quantity": quantity,
                        "price": self._cost(symbol, opened, noise),
                        "realized_pnl": None,
                        "holding_days": None,
                    }
                )
        return out


def _universe(count: int) -> tuple[list[str], list[str]]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    symbols: list[str] = []
    taken: set[str] = set()
    for i in range(count):
        salt = 0
        while True:
            h = _stable("symbol", i, salt)
            symbol = "".join(letters[(h >> (5 * j)) % 26] for j in range(4))
            if symbol not in taken:
                break
            salt += 1
        taken.add(symbol)
        symbols.append(symbol)
    return symbols, [SECTORS[i % len(SECTORS)] for i in range(count)]


from btbuild.plugins.market_source import MarketSource, market_sources  # noqa: E402 - below Market

__all__ = ["Market", "MarketSettings", "MarketSource", "market_sources"]


@hookimpl
def btbuild_configure(config: PluginConfig) -> None:
    MarketSettings.from_config(config)  # fail early, with the BUILD.toml named


@hookimpl
def btbuild_root_sources(config: PluginConfig) -> list[RootSource]:
    return market_sources(MarketSettings.from_config(config))
