"""A user's book at today's close: worth, invested value, open positions and concentration."""


def holdings(ctx):
    book = ctx.user["portfolio"]
    prices = ctx.root("prices")
    values = {}
    for position in book["positions"]:
        bar = prices.get(position["symbol"])
        if bar is None or position["quantity"] <= 0:
            continue
        values[position["symbol"]] = position["quantity"] * bar["close"]
    invested = sum(values.values())
    if invested > 0:
        weights = [value / invested for value in values.values()]
        hhi = sum(w * w for w in weights)
        largest = max(weights)
    else:
        hhi = largest = 0.0
    return {
        "worth": round(invested + book["cash"], 2),
        "invested": round(invested, 2),
        "positions": len(values),
        "hhi": round(hhi, 4),
        "largest": round(largest, 4),
    }
