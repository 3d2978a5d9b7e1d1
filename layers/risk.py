"""Risk and performance measures on return and price series.

Returns are per period (daily here); pass ``periods_per_year`` to annualize. As everywhere in
the layers, undefined values are ``0.0`` (see :mod:`layers.stats`), never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise

from layers.stats import clamp, covariance, mean, safe_div, stdev, variance

TRADING_DAYS = 252
Z_95 = 1.6448536269514722  # one-sided 95% quantile of the standard normal


def volatility(returns: Sequence[float], periods_per_year: int | None = None) -> float:
    """Sample standard deviation of returns, annualized by ``sqrt(periods_per_year)`` if given."""
    sigma = stdev(returns)
    return sigma * math.sqrt(periods_per_year) if periods_per_year else sigma


def max_drawdown(prices: Sequence[float]) -> float:
    """Worst peak-to-trough fall, in [-1, 0] (``-0.25`` = 25% below the running peak).

    Non-positive prices are skipped: a zero quote is missing data, not a total loss.
    """
    peak = 0.0
    worst = 0.0
    for price in prices:
        if price <= 0:
            continue
        peak = max(peak, price)
        worst = min(worst, price / peak - 1.0)
    return clamp(worst, -1.0, 0.0)


def rsi(prices: Sequence[float], period: int = 14) -> float:
    """Relative strength index in [0, 100] over the last ``period`` price changes.

    Simple (Cutler) averages of gains and losses; 50 when there is no movement to judge.
    """
    if period < 1:
        raise ValueError(f"rsi: period must be at least 1, got {period}")
    changes = [b - a for a, b in pairwise(prices)][-period:]
    gains = math.fsum(c for c in changes if c > 0)
    losses = math.fsum(-c for c in changes if c < 0)
    if gains == 0 and losses == 0:
        return 50.0
    return clamp(100.0 * gains / (gains + losses), 0.0, 100.0)


def sharpe_ratio(
    returns: Sequence[float], risk_free: float = 0.0, periods_per_year: int = TRADING_DAYS
) -> float:
    """Annualized Sharpe ratio of per-period returns against a per-period risk-free rate."""
    excess = [r - risk_free for r in returns]
    return safe_div(mean(excess), stdev(excess)) * math.sqrt(periods_per_year)


def sortino_ratio(
    returns: Sequence[float], target: float = 0.0, periods_per_year: int = TRADING_DAYS
) -> float:
    """Annualized Sortino ratio: mean excess over the downside deviation below ``target``."""
    if not returns:
        return 0.0
    downside = math.sqrt(mean([min(0.0, r - target) ** 2 for r in returns]))
    return safe_div(mean([r - target for r in returns]), downside) * math.sqrt(periods_per_year)


def beta(asset: Sequence[float], benchmark: Sequence[float]) -> float:
    """Regression slope of asset returns on benchmark returns; ``0.0`` for a flat benchmark."""
    return safe_div(covariance(asset, benchmark), variance(benchmark))


def alpha(asset: Sequence[float], benchmark: Sequence[float], risk_free: float = 0.0) -> float:
    """Jensen's alpha per period: mean asset return beyond what its beta explains."""
    if not asset:
        return 0.0
    b = beta(asset, benchmark)
    return mean(asset) - (risk_free + b * (mean(benchmark) - risk_free))


def parametric_var(value: float, sigma: float, z: float = Z_95) -> float:
    """One-period value at risk (a positive loss amount) of ``value`` with return deviation ``sigma``."""
    return abs(value) * abs(sigma) * z


def historical_var(returns: Sequence[float], level: float = 0.95) -> float:
    """Loss (positive fraction) exceeded in ``1 - level`` of the observed returns; 0 if none."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"historical_var: level must be within (0, 1), got {level}")
    if not returns:
        return 0.0
    ordered = sorted(returns)
    index = min(len(ordered) - 1, int(math.floor((1.0 - level) * len(ordered))))
    return max(0.0, -ordered[index])


def herfindahl(shares: Mapping[str, float]) -> float:
    """Concentration: the sum of squared weights (1 = one position, 1/n = n equal positions)."""
    return math.fsum(w * w for w in shares.values())


def portfolio_volatility(shares: Mapping[str, float], sigmas: Mapping[str, float]) -> float:
    """Volatility of a weighted basket assuming independent assets: ``sqrt(sum (w * sigma)^2)``."""
    return math.sqrt(math.fsum((w * sigmas.get(symbol, 0.0)) ** 2 for symbol, w in shares.items()))
