"""High-water mark of a user's worth and the drawdown from it, carried from day to day."""


def equity_curve(ctx):
    book = ctx.dep("holdings")
    if book is None:
        return None
    worth = book["worth"]
    before = ctx.previous
    if before is None:
        return {"peak": worth, "worth": worth, "drawdown": 0.0, "days_below": 0, "days": 1}
    peak = max(before["peak"], worth)
    drawdown = round(1.0 - worth / peak, 4) if peak > 0 else 0.0
    days_below = before["days_below"] + 1 if worth < peak else 0
    return {
        "peak": peak,
        "worth": worth,
        "drawdown": drawdown,
        "days_below": days_below,
        "days": before["days"] + 1,
    }
