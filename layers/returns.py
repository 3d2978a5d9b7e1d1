"""Returns of price series."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise


def simple_return(previous: float, current: float) -> float:
    """``current / previous - 1``; ``0.0`` when the previous price is not positive."""
    if previous <= 0 or current < 0:
        return 0.0
    return current / previous - 1.0


def log_return(previous: float, current: float) -> float:
    """``ln(current / previous)``; ``0.0`` unless both prices are positive."""
    if previous <= 0 or current <= 0:
        return 0.0
    return math.log(current / previous)


def simple_returns(prices: Sequence[float]) -> list[float]:
    """Returns between consecutive prices (one fewer than the prices)."""
    return [simple_return(a, b) for a, b in pairwise(prices)]


def log_returns(prices: Sequence[float]) -> list[float]:
    return [log_return(a, b) for a, b in pairwise(prices)]


def cumulative_return(returns: Sequence[float]) -> float:
    """Compounded return of a series of simple returns: ``prod(1 + r) - 1``."""
    growth = 1.0
    for r in returns:
        growth *= 1.0 + r
    return growth - 1.0
