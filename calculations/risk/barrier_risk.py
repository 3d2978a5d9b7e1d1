"""Probability that a holding hits a 15% stop-loss within a month, under GBM."""

from __future__ import annotations

import math

from layers.gbm import barrier_hit_probability
from layers.market import position_values, weights
from layers.stats import rounded

STOP_FRACTION = 0.85  # a stop 15% below today's close (15% above it for a short position)
HORIZON_DAYS = 21  # trading days in a month


class BarrierRisk:
    """One instance serves a whole cell (one date), so per-symbol probabilities are memoized."""

    def __init__(self):
        self._memo = {}

    def process(self, ctx):
        """``{max_probability, weighted_probability, riskiest}`` over the user's holdings."""
        portfolio = ctx.user["portfolio"]
        if portfolio is None:
            return None
        stats = ctx.dep("symbol_stats") or {}
        values = position_values(portfolio, ctx.root("prices"))
        shares = weights(values)
        if not shares:
            return {"max_probability": 0.0, "weighted_probability": 0.0, "riskiest": None}
        odds = {
            s: self._probability(ctx.date, s, values[s] < 0, stats.get(s)) for s in sorted(shares)
        }
        riskiest = max(odds, key=lambda s: odds[s])  # sorted keys: ties go to the first symbol
        return {
            "max_probability": rounded(odds[riskiest], 6),
            "weighted_probability": rounded(math.fsum(shares[s] * odds[s] for s in odds), 6),
            "riskiest": riskiest,
        }

    def _probability(self, day, symbol, short, stat):
        key = (day, symbol, short)
        if key not in self._memo:
            if stat is None:
                self._memo[key] = 0.0  # no history: no evidence of risk
            else:
                barrier = 1.0 / STOP_FRACTION if short else STOP_FRACTION
                self._memo[key] = barrier_hit_probability(
                    1.0, barrier, stat["mean"], stat["vol"], HORIZON_DAYS
                )
        return self._memo[key]
