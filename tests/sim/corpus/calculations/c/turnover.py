"""Traded notional today against the average of the previous three days."""

DAYS = 3


def notional(trades):
    return sum(t["quantity"] * t["price"] for t in trades or [])


def turnover(ctx):
    today = notional(ctx.user["trades"])
    history = [notional(ctx.user.get("trades", days_ago=back)) for back in range(1, DAYS + 1)]
    average = sum(history) / DAYS
    ratio = today / average if average > 0 else None
    return {
        "today": round(today, 2),
        "average": round(average, 2),
        "ratio": None if ratio is None else round(ratio, 4),
    }
