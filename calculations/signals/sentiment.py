"""Analyst sentiment per symbol and sector, when today's insights were published."""

from __future__ import annotations

from layers.stats import mean, rounded


def sentiment(ctx):
    """``{available, symbols, by_sector, ratings}``; ``available`` is false on days without insights."""
    insights = ctx.root("insights")
    if insights is None:
        return {
            "available": False,
            "symbols": {},
            "by_sector": {},
            "ratings": {"buy": 0, "hold": 0, "sell": 0},
        }
    prices = ctx.root("prices")
    by_sector: dict[str, list[float]] = {}
    ratings = {"buy": 0, "hold": 0, "sell": 0}
    for symbol, view in insights.items():
        sector = prices.get(symbol, {}).get("sector", "unknown")
        by_sector.setdefault(sector, []).append(float(view["sentiment"]))
        if view.get("rating") in ratings:
            ratings[view["rating"]] += 1
    return {
        "available": True,
        "symbols": {s: rounded(float(v["sentiment"]), 4) for s, v in insights.items()},
        "by_sector": {sector: rounded(mean(values), 4) for sector, values in by_sector.items()},
        "ratings": ratings,
    }
