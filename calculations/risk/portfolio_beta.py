"""A user's portfolio beta and alpha: the position-weighted sector betas of its holdings."""

from __future__ import annotations

import math

from layers.market import position_values, weights
from layers.stats import rounded


def portfolio_beta(ctx):
    """``{beta, alpha, covered}``; ``covered`` is the weight of holdings that have a beta."""
    portfolio = ctx.user["portfolio"]
    if portfolio is None:
        return None
    betas = ctx.dep("symbol_betas") or {}
    shares = weights(position_values(portfolio, ctx.root("prices")))
    known = {symbol: w for symbol, w in shares.items() if symbol in betas}
    return {
        "beta": rounded(math.fsum(w * betas[s]["beta"] for s, w in known.items()), 6),
        "alpha": rounded(math.fsum(w * betas[s]["alpha"] for s, w in known.items()), 8),
        "covered": rounded(math.fsum(known.values()), 6),
    }
