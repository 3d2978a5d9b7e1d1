"""Today's closed trades: realized P&L, wins, hit rate and average holding period."""

BIG_LOSS = -1000.0


def realized_day(ctx):
    trades = ctx.user["trades"] or []
    closed = [t for t in trades if t["side"] == "sell"]
    if not closed:
        return None
    pnl = [t["realized_pnl"] for t in closed]
    wins = sum(1 for p in pnl if p > 0)
    return {
        "pnl": round(sum(pnl), 2),
        "trades": len(closed),
        "wins": wins,
        "hit_rate": round(wins / len(closed), 3),
        "avg_days": round(sum(t["holding_days"] for t in closed) / len(closed), 1),
        "big_loser": min(pnl) < BIG_LOSS,
    }
