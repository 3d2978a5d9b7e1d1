"""Each symbol's close-to-close return since the previous trading day."""

from __future__ import annotations

from layers.market import previous_record
from layers.returns import simple_return
from layers.stats import rounded

LOOKBACK_DAYS = 4  # must match `lookback` in BUILD.toml


def daily_returns(ctx):
    """``{symbol: return}``; empty when no earlier trading day is within the look-back."""
    prices = ctx.root("prices")
    previous = previous_record(ctx, "prices", LOOKBACK_DAYS)
    if previous is None:
        return {}
    _, before = previous
    returns = {}
    for symbol, quote in prices.items():
        old = before.get(symbol)
        if old is not None:
            returns[symbol] = rounded(simple_return(float(old["close"]), float(quote["close"])), 8)
    return returns
