"""The convex hull of a user's holdings in (risk, return) space and its efficient frontier."""

from __future__ import annotations

import math

from layers.geometry import convex_hull, efficient_frontier, polygon_area
from layers.market import position_values, weights
from layers.risk import TRADING_DAYS
from layers.stats import rounded


def risk_geometry(ctx):
    """``{points, hull_vertices, area, frontier, efficiency}``.

    Each priced holding is a point (annualized volatility, annualized mean return);
    ``efficiency`` is the portfolio weight held in names on the efficient frontier (1.0 for a
    single holding, 0.0 with nothing priced).
    """
    portfolio = ctx.user["portfolio"]
    if portfolio is None:
        return None
    stats = ctx.dep("symbol_stats") or {}
    shares = weights(position_values(portfolio, ctx.root("prices")))
    points = {
        symbol: (
            round(stats[symbol]["vol"] * math.sqrt(TRADING_DAYS), 9),
            round(stats[symbol]["mean"] * TRADING_DAYS, 9),
        )
        for symbol in shares
        if symbol in stats
    }
    hull = convex_hull(points.values())
    frontier = set(efficient_frontier(points.values()))
    on_frontier = sorted(symbol for symbol, point in points.items() if point in frontier)
    return {
        "points": len(points),
        "hull_vertices": len(hull),
        "area": rounded(polygon_area(hull), 8),
        "frontier": on_frontier,
        "efficiency": rounded(math.fsum(shares[s] for s in on_frontier), 6),
    }
