"""Running total of realized P&L over all users, the days counted and the best day so far."""


def realized_total(ctx):
    today = ctx.dep("realized_day") or {}
    pnl = round(sum(value["pnl"] for value in today.values()), 2)
    before = ctx.previous
    if before is None:
        return {"total": pnl, "days": 1, "best": pnl, "today": pnl, "traders": len(today)}
    return {
        "total": round(before["total"] + pnl, 2),
        "days": before["days"] + 1,
        "best": max(before["best"], pnl),
        "today": pnl,
        "traders": len(today),
    }
