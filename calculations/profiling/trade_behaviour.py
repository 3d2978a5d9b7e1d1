"""Revenge trading and disposition skew over a user's last week of trades."""

from __future__ import annotations

from layers.market import recent_user_records
from layers.psychometrics import disposition_skew, flatten, revenge_trading
from layers.stats import rounded

WINDOW_DAYS = 6  # must match `lookback` in BUILD.toml


def trade_behaviour(ctx):
    """``{trades, losses, escalations, revenge, disposition_skew}``; no result without trades."""
    trades = flatten(recent_user_records(ctx, "trades", WINDOW_DAYS))
    if not trades:
        return None
    revenge = revenge_trading(trades)
    return {
        "trades": len(trades),
        "losses": revenge["losses"],
        "escalations": revenge["escalations"],
        "revenge": rounded(revenge["score"], 6),
        "disposition_skew": rounded(disposition_skew(trades), 6),
    }
