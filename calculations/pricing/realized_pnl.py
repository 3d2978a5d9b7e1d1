"""The P&L a user realized today by closing positions."""

from __future__ import annotations

import math

from layers.stats import rounded


def realized_pnl(ctx):
    """``{trades, closed, realized, wins, losses}``; no result for a user who did not trade."""
    trades = ctx.user["trades"]
    if not trades:
        return None
    closed = [float(t["realized_pnl"]) for t in trades if t.get("realized_pnl") is not None]
    return {
        "trades": len(trades),
        "closed": len(closed),
        "realized": rounded(math.fsum(closed), 2),
        "wins": sum(1 for pnl in closed if pnl > 0),
        "losses": sum(1 for pnl in closed if pnl < 0),
    }
