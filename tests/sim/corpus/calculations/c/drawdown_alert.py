"""Alert when a user's unrealized P&L share dropped by more than five points since yesterday."""

THRESHOLD = 5.0


def drawdown_alert(ctx):
    today = ctx.dep("unrealized_pnl")
    if today is None:
        return None
    before = ctx.previous
    if before is None:
        return {"pct": today["pct"], "alert": False, "drop": 0.0}
    drop = before["pct"] - today["pct"]
    return {"pct": today["pct"], "alert": drop > THRESHOLD, "drop": round(drop, 4)}
