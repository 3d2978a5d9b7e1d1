"""On the 1st, each sector's performance over the month that just ended."""

from __future__ import annotations

import datetime

from layers.returns import simple_return
from layers.stats import rounded

LOOKBACK_DAYS = 35  # must match `lookback` in BUILD.toml; covers a 31-day month plus a long weekend


def monthly_sector_performance(ctx):
    """``{month, available, sectors, best, worst}`` for the previous calendar month.

    The month's return runs from the last close before the month to its last close; either
    may fall on an earlier day (weekends), so both are searched for within the look-back.
    """
    last_day = ctx.date - datetime.timedelta(days=1)
    first_day = last_day.replace(day=1)
    month = first_day.strftime("%Y-%m")
    end = _latest(ctx, (ctx.date - last_day).days, (ctx.date - first_day).days)
    start = _latest(ctx, (ctx.date - first_day).days + 1, LOOKBACK_DAYS)
    if end is None or start is None:
        return {"month": month, "available": False, "sectors": {}, "best": None, "worst": None}
    sectors = {
        sector: rounded(simple_return(float(start[sector]["level"]), float(index["level"])), 8)
        for sector, index in end.items()
        if sector in start
    }
    ranked = sorted(
        ((r, s) for s, r in sectors.items() if s != "market"), key=lambda item: (-item[0], item[1])
    )
    return {
        "month": month,
        "available": True,
        "sectors": sectors,
        "best": ranked[0][1] if ranked else None,
        "worst": ranked[-1][1] if ranked else None,
    }


def _latest(ctx, nearest, farthest):
    """The benchmarks record closest to today with ``nearest <= days_ago <= farthest``."""
    for days_ago in range(nearest, min(farthest, LOOKBACK_DAYS) + 1):
        record = ctx.root("benchmarks", days_ago=days_ago)
        if record is not None:
            return record
    return None
