"""Consecutive days a user's book has been under water, the longest run, and an alert at 3 days."""

ALERT_DAYS = 3


def loss_streak(ctx):
    today = ctx.dep("pnl_bucket")
    if today is None:
        return None
    before = ctx.previous or {"streak": 0, "longest": 0, "seen": 0}
    streak = before["streak"] + 1 if today["pct"] < 0 else 0
    return {
        "streak": streak,
        "longest": max(before["longest"], streak),
        "seen": before["seen"] + 1,
        "alert": streak >= ALERT_DAYS,
    }
