"""Symbols trading far above their average volume of the previous trading days of the week."""

SURGE = 2.5
MIN_DAYS = 3


def volume_surge(ctx):
    today = ctx.root("prices")
    history = [ctx.root("prices", days_ago=back) for back in range(1, 8)]
    history = [day for day in history if day]
    if len(history) < MIN_DAYS:
        return {"days": len(history), "surging": [], "count": 0}
    surging = []
    for symbol, bar in today.items():
        volumes = [day[symbol]["volume"] for day in history if symbol in day]
        if not volumes:
            continue
        average = sum(volumes) / len(volumes)
        if average > 0 and bar["volume"] / average > SURGE:
            surging.append(symbol)
    return {"days": len(history), "surging": sorted(surging), "count": len(surging)}
