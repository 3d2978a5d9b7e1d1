"""Hypothesis strategies for the market's record shapes (docs/dev/market-data.md).

They aim at the edges calculations trip over: empty and single-position portfolios,
zero cash, zero and negative pnl, closed-out (zero quantity) lines, tiny prices.
Every strategy draws symbols from one small list, so fabricated prices, portfolios and trades
refer to the same instruments.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from hypothesis import strategies as st

SECTORS = ("tech", "energy", "finance", "health", "consumer", "industrial")


def _price() -> st.SearchStrategy[float]:
    return st.one_of(
        st.sampled_from([0.0001, 0.01, 1.0, 100.0]),
        st.floats(min_value=0.0001, max_value=5000.0, allow_nan=False, allow_infinity=False),
    )


def _money() -> st.SearchStrategy[float]:
    return st.one_of(
        st.just(0.0),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    )


def _quantity() -> st.SearchStrategy[float]:
    return st.one_of(
        st.just(0.0), st.just(1.0), st.floats(min_value=0.0, max_value=1e5, allow_nan=False)
    )


def _day() -> st.SearchStrategy[str]:
    return st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31)).map(date.isoformat)


@st.composite
def _bar(draw: st.DrawFn, sector: str) -> dict[str, Any]:
    close, open_ = draw(_price()), draw(_price())
    high = max(close, open_) * (1 + draw(st.floats(0, 0.1)))
    low = min(close, open_) * (1 - draw(st.floats(0, 0.5)))
    return {
        "close": close,
        "open": open_,
        "high": high,
        "low": low,
        "volume": draw(st.integers(0, 10**9)),
        "sector": sector,
    }


def prices(symbols: Sequence[str]) -> st.SearchStrategy[dict[str, Any]]:
    # Every symbol is priced, as in the generated market, so fabricated portfolios and trades
    # (drawn from the same symbols) always find their prices.
    return st.fixed_dictionaries(
        {s: _bar(SECTORS[i % len(SECTORS)]) for i, s in enumerate(symbols)}
    )


def benchmarks() -> st.SearchStrategy[dict[str, Any]]:
    level = st.floats(min_value=0.01, max_value=1e5, allow_nan=False).map(lambda v: {"level": v})
    return st.fixed_dictionaries({name: level for name in (*SECTORS, "market")})


def insights(symbols: Sequence[str]) -> st.SearchStrategy[dict[str, Any]]:
    insight = st.fixed_dictionaries(
        {
            "sentiment": st.floats(min_value=-1.0, max_value=1.0),
            "rating": st.sampled_from(["buy", "hold", "sell"]),
        }
    )
    return st.fixed_dictionaries({s: insight for s in symbols})


def portfolio(symbols: Sequence[str]) -> st.SearchStrategy[dict[str, Any]]:
    position = st.fixed_dictionaries(
        {"quantity": _quantity(), "avg_cost": _price(), "opened": _day()}
    )

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        # Sizes 0 and 1 first in the alternatives so shrinking and small examples reach them.
        held = draw(
            st.one_of(
                st.just([]),
                st.lists(st.sampled_from(list(symbols)), min_size=1, max_size=1),
                st.lists(st.sampled_from(list(symbols)), max_size=len(symbols), unique=True),
            )
        )
        cash = draw(
            st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1e7, allow_nan=False))
        )
        return {"cash": cash, "positions": [{"symbol": s, **draw(position)} for s in held]}

    return build()


def trades(symbols: Sequence[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    @st.composite
    def trade(draw: st.DrawFn) -> dict[str, Any]:
        side = draw(st.sampled_from(["buy", "sell"]))
        closing = side == "sell" and draw(st.booleans())
        return {
            "symbol": draw(st.sampled_from(list(symbols))),
            "side": side,
            "quantity": draw(st.floats(min_value=0.0001, max_value=1e5, allow_nan=False)),
            "price": draw(_price()),
            "realized_pnl": draw(_money()) if closing else None,
            "holding_days": draw(st.integers(0, 3650)) if closing else None,
        }

    return st.lists(trade(), max_size=6)


def for_source(name: str, symbols: Sequence[str]) -> st.SearchStrategy[Any]:
    if name == "prices":
        return prices(symbols)
    if name == "benchmarks":
        return benchmarks()
    if name == "insights":
        return insights(symbols)
    if name == "portfolio":
        return portfolio(symbols)
    return trades(symbols)
