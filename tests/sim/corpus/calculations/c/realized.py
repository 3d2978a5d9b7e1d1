"""Realized P&L of today's closing trades: total, wins, losses and win rate."""


def realized(ctx):
    trades = ctx.user["trades"] or []
    closed = [t for t in trades if t["realized_pnl"] is not None]
    if not closed:
        return None
    wins = sum(1 for t in closed if t["realized_pnl"] > 0)
    losses = sum(1 for t in closed if t["realized_pnl"] < 0)
    total = sum(t["realized_pnl"] for t in closed)
    return {
        "total": round(total, 2),
        "wins": wins,
        "losses": losses,
        "win_rate": round(wins / len(closed), 4),
    }
