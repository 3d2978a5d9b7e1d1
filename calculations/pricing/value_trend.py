"""A user's portfolio value over the last week, from portfolio_value's earlier results."""

from __future__ import annotations

from layers.stats import rounded

WEEK = 7  # must match dep_lookback in BUILD.toml


def value_trend(ctx):
    """``{days, change, high, low}`` over today and the 7 calendar days before.

    Weekends and days before the user's first valuation have no result (None) and are
    skipped; ``change`` is today's total minus the oldest total of the week.
    """
    today = ctx.dep("portfolio_value")
    if today is None:
        return None
    totals = [today["total"]]
    for back in range(1, WEEK + 1):
        earlier = ctx.dep("portfolio_value", days_ago=back)
        if earlier is not None:
            totals.append(earlier["total"])
    return {
        "days": len(totals),
        "change": rounded(totals[0] - totals[-1], 2),
        "high": max(totals),
        "low": min(totals),
    }
