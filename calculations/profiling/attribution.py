"""Today's portfolio return split into market luck (beta x market) and skill (alpha)."""

from __future__ import annotations

import math

from layers.attribution import luck_vs_skill
from layers.market import position_values, weights
from layers.stats import rounded, safe_div


def attribution(ctx):
    """``{return, market, alpha, skill_share}``; no result without priced holdings or history."""
    portfolio = ctx.user["portfolio"]
    if portfolio is None:
        return None
    returns = ctx.dep("daily_returns") or {}
    market = (ctx.dep("sector_returns") or {}).get("market")
    beta = ctx.dep("portfolio_beta")
    shares = weights(position_values(portfolio, ctx.root("prices")))
    known = {symbol: w for symbol, w in shares.items() if symbol in returns}
    if not known or market is None or beta is None:
        return None
    portfolio_return = safe_div(
        math.fsum(w * returns[s] for s, w in known.items()), math.fsum(known.values())
    )
    split = luck_vs_skill(portfolio_return, market, beta["beta"])
    return {
        "return": rounded(portfolio_return, 8),
        "market": rounded(split["market"], 8),
        "alpha": rounded(split["alpha"], 8),
        "skill_share": rounded(split["skill_share"], 6),
    }
