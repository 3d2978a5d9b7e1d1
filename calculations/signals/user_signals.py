"""How much of a user's portfolio sits in overbought, oversold and well-rated names."""

from __future__ import annotations

import math

from layers.market import position_values, weights
from layers.stats import rounded, safe_div


def user_signals(ctx):
    """``{overbought_weight, oversold_weight, sentiment}``; ``sentiment`` is null without insights."""
    portfolio = ctx.user["portfolio"]
    if portfolio is None:
        return None
    signals = ctx.dep("rsi_signals") or {"overbought": [], "oversold": []}
    mood = ctx.dep("sentiment") or {"available": False, "symbols": {}}
    shares = weights(position_values(portfolio, ctx.root("prices")))
    overbought, oversold = set(signals["overbought"]), set(signals["oversold"])
    rated = {s: w for s, w in shares.items() if s in mood["symbols"]}
    weighted = safe_div(
        math.fsum(w * mood["symbols"][s] for s, w in rated.items()), math.fsum(rated.values())
    )
    return {
        "overbought_weight": rounded(math.fsum(w for s, w in shares.items() if s in overbought), 6),
        "oversold_weight": rounded(math.fsum(w for s, w in shares.items() if s in oversold), 6),
        "sentiment": rounded(weighted, 4) if mood["available"] and rated else None,
    }
