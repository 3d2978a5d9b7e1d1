"""Each sector benchmark's (and the market's) return since the previous trading day."""

from __future__ import annotations

from layers.market import previous_record
from layers.returns import simple_return
from layers.stats import rounded

LOOKBACK_DAYS = 4  # must match `lookback` in BUILD.toml


def sector_returns(ctx):
    """``{sector: return}`` including ``"market"``; empty on the first trading day."""
    levels = ctx.root("benchmarks")
    previous = previous_record(ctx, "benchmarks", LOOKBACK_DAYS)
    if previous is None:
        return {}
    _, before = previous
    return {
        sector: rounded(simple_return(float(before[sector]["level"]), float(index["level"])), 8)
        for sector, index in levels.items()
        if sector in before
    }
