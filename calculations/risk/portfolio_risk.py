"""A user's portfolio volatility, concentration and a 0-100 risk score."""

from __future__ import annotations

import math

from layers.market import position_values, weights
from layers.risk import TRADING_DAYS, herfindahl, portfolio_volatility
from layers.stats import clamp, rounded, safe_div

FULL_RISK_VOLATILITY = 0.60  # annualized volatility that maxes out the volatility component


class PortfolioRisk:
    def process(self, ctx):
        """``{volatility, concentration, largest_weight, invested, score}``.

        ``score`` = 100 x (0.5 volatility/60% capped at 1 + 0.3 concentration + 0.2 invested
        share), so an all-cash user scores 0 and one fully invested, volatile stock scores 100.
        """
        value = ctx.dep("portfolio_value")
        if value is None:
            return None
        stats = ctx.dep("symbol_stats") or {}
        shares = weights(position_values(ctx.user["portfolio"], ctx.root("prices")))
        sigmas = {symbol: stats[symbol]["vol"] for symbol in shares if symbol in stats}
        daily_vol = portfolio_volatility(shares, sigmas)
        concentration = herfindahl(shares)
        invested = safe_div(value["market_value"], value["market_value"] + max(value["cash"], 0.0))
        annual_vol = daily_vol * math.sqrt(TRADING_DAYS)
        score = 100.0 * (
            0.5 * min(1.0, annual_vol / FULL_RISK_VOLATILITY)
            + 0.3 * concentration
            + 0.2 * clamp(invested, 0.0, 1.0)
        )
        return {
            "volatility": rounded(daily_vol, 8),
            "concentration": rounded(concentration, 6),
            "largest_weight": rounded(max(shares.values(), default=0.0), 6),
            "invested": rounded(clamp(invested, 0.0, 1.0), 6),
            "score": rounded(score, 2),
        }
