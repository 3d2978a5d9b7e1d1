"""Portfolio concentration: Herfindahl index of position weights and the largest weight."""


def concentration(ctx):
    prices = ctx.root("prices")
    values = {}
    for position in ctx.user["portfolio"]["positions"]:
        bar = prices.get(position["symbol"])
        if bar is not None and position["quantity"] > 0:
            values[position["symbol"]] = position["quantity"] * bar["close"]
    total = sum(values.values())
    if total <= 0:
        return None
    weights = [value / total for value in values.values()]
    return {"hhi": round(sum(w * w for w in weights), 6), "largest": round(max(weights), 6)}
