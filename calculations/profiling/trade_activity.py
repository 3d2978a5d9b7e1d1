"""What an active trader did today (a segment target: only users who traded today)."""

from __future__ import annotations

import math

from layers.stats import rounded


def trade_activity(ctx):
    """``{trades, buys, sells, notional}``. Runs only for the ``active_trader`` segment, so
    today's trades are never missing or empty: no filter, no null-density override."""
    trades = ctx.user["trades"]
    buys = sum(1 for trade in trades if trade["side"] == "buy")
    notional = math.fsum(float(t["quantity"]) * float(t["price"]) for t in trades)
    return {
        "trades": len(trades),
        "buys": buys,
        "sells": len(trades) - buys,
        "notional": rounded(notional, 2),
    }
