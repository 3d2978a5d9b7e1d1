"""Next week's market outlook from a seeded GBM simulation of the market index."""

from __future__ import annotations

from layers.gbm import barrier_hit_probability, simulate_gbm_paths
from layers.market import field_series, recent_records
from layers.returns import simple_returns
from layers.risk import volatility
from layers.stats import mean, percentile, rounded

WINDOW_DAYS = 30  # must match `lookback` in BUILD.toml
HORIZON_DAYS = 5
PATHS = 400
DROP = 0.95  # "a 5% drop at some point next week"


class MarketOutlook:
    def process(self, ctx):
        """``{drift, volatility, p05, p50, p95, drop_probability, drop_simulated}`` of next week.

        The generator is seeded with the date's ordinal, so a date's outlook never changes.
        """
        levels = field_series(recent_records(ctx, "benchmarks", WINDOW_DAYS), "market", "level")
        returns = simple_returns([level for level in levels if level > 0])
        mu, sigma = mean(returns), volatility(returns)
        paths = simulate_gbm_paths(1.0, mu, sigma, HORIZON_DAYS, PATHS, seed=ctx.date.toordinal())
        finals = [path[-1] - 1.0 for path in paths]
        dropped = sum(1 for path in paths if min(path) <= DROP)
        return {
            "drift": rounded(mu, 8),
            "volatility": rounded(sigma, 8),
            "p05": rounded(percentile(finals, 5), 6),
            "p50": rounded(percentile(finals, 50), 6),
            "p95": rounded(percentile(finals, 95), 6),
            "drop_probability": rounded(
                barrier_hit_probability(1.0, DROP, mu, sigma, HORIZON_DAYS), 6
            ),
            "drop_simulated": rounded(dropped / PATHS, 6),
        }
