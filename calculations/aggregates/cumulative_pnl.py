"""Running total of the P&L realized by all users since the first built day."""

from __future__ import annotations

import math

from layers.stats import rounded

START = {"days": 0, "total": 0.0, "wins": 0, "losses": 0}


def cumulative_pnl(ctx):
    """``{days, today, total, wins, losses}``: yesterday's totals (``ctx.previous``) plus today's.

    ``math.fsum`` makes the day's sum independent of the order users arrive in.
    """
    realized = [v for v in (ctx.dep("realized_pnl") or {}).values() if v]
    before = ctx.previous or START
    today = math.fsum(v["realized"] for v in realized)
    return {
        "days": before["days"] + 1,
        "today": rounded(today, 2),
        "total": rounded(before["total"] + today, 2),
        "wins": before["wins"] + sum(v["wins"] for v in realized),
        "losses": before["losses"] + sum(v["losses"] for v in realized),
    }
