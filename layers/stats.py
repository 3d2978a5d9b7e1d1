"""Basic statistics on plain lists of floats.

Conventions shared by every layer: an undefined statistic (the mean of nothing, the deviation
of one observation, a division by zero) is ``0.0`` — "no evidence" — rather than NaN, because
calculation results must be finite JSON numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def is_finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def safe_div(numerator: float, denominator: float, default: float = 0.0) -> float:
    """``numerator / denominator``, or ``default`` when the divisor is zero or the result is not finite."""
    if denominator == 0:
        return default
    result = numerator / denominator
    return result if math.isfinite(result) else default


def clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def mean(values: Iterable[float]) -> float:
    items = list(values)
    return math.fsum(items) / len(items) if items else 0.0


def weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    if len(values) != len(weights):
        raise ValueError(f"weighted_mean: {len(values)} values but {len(weights)} weights")
    total = math.fsum(weights)
    return safe_div(math.fsum(v * w for v, w in zip(values, weights, strict=True)), total)


def variance(values: Sequence[float], *, sample: bool = True) -> float:
    """Sample variance (n - 1) by default; ``0.0`` with fewer than two observations."""
    n = len(values)
    if n < 2:
        return 0.0
    centre = mean(values)
    squares = math.fsum((v - centre) ** 2 for v in values)
    return squares / (n - 1 if sample else n)


def stdev(values: Sequence[float], *, sample: bool = True) -> float:
    return math.sqrt(variance(values, sample=sample))


def covariance(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Sample covariance of two equally long series; ``0.0`` with fewer than two pairs."""
    if len(xs) != len(ys):
        raise ValueError(f"covariance: series of different lengths ({len(xs)} and {len(ys)})")
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = mean(xs), mean(ys)
    return math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / (n - 1)


def correlation(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation in [-1, 1]; ``0.0`` when either series is constant."""
    value = safe_div(covariance(xs, ys), stdev(xs) * stdev(ys))
    return clamp(value, -1.0, 1.0)


def median(values: Iterable[float]) -> float:
    return percentile(values, 50.0)


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between ranks; ``0.0`` if empty."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile: q must be within [0, 100], got {q}")
    items = sorted(values)
    if not items:
        return 0.0
    rank = (len(items) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(items) - 1)
    fraction = rank - low
    return items[low] + (items[high] - items[low]) * fraction


def rounded(value: float, digits: int = 6) -> float:
    """Round for storage (stable result hashes); a non-finite value becomes ``0.0``."""
    if not math.isfinite(value):
        return 0.0
    result = round(value, digits)
    return 0.0 if result == 0 else result  # no "-0.0": the same number, the same bytes
