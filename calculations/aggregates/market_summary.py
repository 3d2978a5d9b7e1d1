"""Market breadth and the best and worst sectors of the day."""

from __future__ import annotations

from layers.stats import mean, rounded, safe_div


def market_summary(ctx):
    """``{advancers, decliners, unchanged, breadth, mean_return, market_return, best_sector, worst_sector}``."""
    returns = ctx.dep("daily_returns") or {}
    sectors = dict(ctx.dep("sector_returns") or {})
    market = sectors.pop("market", None)
    advancers = sum(1 for r in returns.values() if r > 0)
    decliners = sum(1 for r in returns.values() if r < 0)
    ranked = sorted(sectors.items(), key=lambda item: (-item[1], item[0]))
    return {
        "advancers": advancers,
        "decliners": decliners,
        "unchanged": len(returns) - advancers - decliners,
        "breadth": rounded(safe_div(advancers - decliners, len(returns)), 6),
        "mean_return": rounded(mean(returns.values()), 8),
        "market_return": market,
        "best_sector": ranked[0][0] if ranked else None,
        "worst_sector": ranked[-1][0] if ranked else None,
    }
