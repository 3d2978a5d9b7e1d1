"""Geometric Brownian motion: barrier hit probabilities and seeded path simulation.

The price follows ``dS = mu S dt + sigma S dW``; ``mu`` and ``sigma`` are per period (daily in
the demo) and ``horizon`` counts periods. Simulation uses its own ``random.Random(seed)``, never
the global random state, so the same seed gives the same paths in every process.
"""

from __future__ import annotations

import math
import random

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def log_norm_cdf(x: float) -> float:
    """``log(Phi(x))`` that stays finite far in the lower tail (asymptotic series below -35)."""
    if x > -35.0:
        return math.log(max(norm_cdf(x), 1e-300))
    inverse_square = 1.0 / (x * x)
    return (
        -0.5 * x * x
        - math.log(-x)
        - _LOG_SQRT_2PI
        + math.log1p(-inverse_square + 3.0 * inverse_square**2)
    )


def barrier_hit_probability(
    spot: float, barrier: float, mu: float, sigma: float, horizon: float
) -> float:
    """Probability that the price touches ``barrier`` at some time within ``horizon`` periods.

    Closed form of the first passage of a Brownian motion with drift ``nu = mu - sigma^2/2``
    in log space, ``b = ln(barrier / spot)``. For a barrier below the spot::

        P = Phi((b - nu T) / (sigma sqrt T)) + exp(2 nu b / sigma^2) Phi((b + nu T) / (sigma sqrt T))

    and the mirror image above it. A barrier already at or past the spot has probability 1.
    """
    if spot <= 0 or barrier <= 0:
        raise ValueError(
            f"barrier_hit_probability: spot and barrier must be positive, got {spot} and {barrier}"
        )
    if barrier == spot:
        return 1.0
    if horizon <= 0:
        return 0.0
    b = math.log(barrier / spot)
    down = b < 0
    variance = sigma * sigma
    spread = sigma * math.sqrt(horizon)
    nu = mu - 0.5 * variance
    if not down:  # reflect: an up barrier for X is a down barrier for -X
        b, nu = -b, -nu
    if sigma > 0 and variance > 0 and spread > 0:
        reflection = 2.0 * nu * b / variance
        tail = (b + nu * horizon) / spread
        if math.isfinite(reflection) and math.isfinite(tail):
            first = norm_cdf((b - nu * horizon) / spread)
            second = math.exp(min(reflection + log_norm_cdf(tail), 0.0))
            return min(1.0, max(0.0, first + second))
    # no (or numerically negligible) noise: the path hits only if the drift carries it there
    return 1.0 if nu * horizon <= b else 0.0


def simulate_gbm_path(
    spot: float, mu: float, sigma: float, steps: int, seed: int, dt: float = 1.0
) -> list[float]:
    """One price path of ``steps + 1`` prices (starting at ``spot``), exactly reproducible from ``seed``."""
    return _path(random.Random(seed), spot, mu, sigma, steps, dt)


def simulate_gbm_paths(
    spot: float, mu: float, sigma: float, steps: int, paths: int, seed: int, dt: float = 1.0
) -> list[list[float]]:
    """``paths`` independent paths drawn from one generator seeded with ``seed``."""
    rng = random.Random(seed)
    return [_path(rng, spot, mu, sigma, steps, dt) for _ in range(paths)]


def monte_carlo_hit_probability(
    spot: float, barrier: float, mu: float, sigma: float, steps: int, paths: int, seed: int
) -> float:
    """Share of simulated paths that touch ``barrier`` at one of the ``steps`` monitoring times."""
    if paths <= 0:
        return 0.0
    down = barrier < spot
    hits = 0
    for path in simulate_gbm_paths(spot, mu, sigma, steps, paths, seed):
        if any((p <= barrier) if down else (p >= barrier) for p in path):
            hits += 1
    return hits / paths


def _path(
    rng: random.Random, spot: float, mu: float, sigma: float, steps: int, dt: float
) -> list[float]:
    if steps < 0:
        raise ValueError(f"simulate_gbm_path: steps must be non-negative, got {steps}")
    drift = (mu - 0.5 * sigma * sigma) * dt
    shock = sigma * math.sqrt(dt)
    prices = [spot]
    log_price = math.log(spot) if spot > 0 else 0.0
    for _ in range(steps):
        log_price += drift + shock * rng.gauss(0.0, 1.0)
        prices.append(math.exp(log_price) if spot > 0 else 0.0)
    return prices
