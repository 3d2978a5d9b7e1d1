"""Per-symbol statistics over the last 30 calendar days: the market-wide work done once a date."""

from __future__ import annotations

from layers.market import field_series, recent_records
from layers.returns import simple_returns
from layers.risk import max_drawdown, rsi, volatility
from layers.stats import mean, rounded

WINDOW_DAYS = 30  # must match `lookback` in BUILD.toml


def symbol_stats(ctx):
    """``{symbol: {sector, close, mean, vol, drawdown, rsi, observations}}`` (daily units)."""
    records = recent_records(ctx, "prices", WINDOW_DAYS)
    stats = {}
    for symbol, quote in ctx.root("prices").items():
        closes = [c for c in field_series(records, symbol, "close") if c > 0]
        returns = simple_returns(closes)
        stats[symbol] = {
            "sector": quote.get("sector", "unknown"),
            "close": rounded(float(quote["close"]), 4),
            "mean": rounded(mean(returns), 8),
            "vol": rounded(volatility(returns), 8),
            "drawdown": rounded(max_drawdown(closes), 6),
            "rsi": rounded(rsi(closes), 4),
            "observations": len(closes),
        }
    return stats
