"""A user's invested value per sector, as shares of the invested total."""


def sector_exposure(ctx):
    prices = ctx.root("prices")
    by_sector = {}
    for position in ctx.user["portfolio"]["positions"]:
        bar = prices.get(position["symbol"])
        if bar is None:
            continue
        value = position["quantity"] * bar["close"]
        by_sector[bar["sector"]] = by_sector.get(bar["sector"], 0.0) + value
    total = sum(by_sector.values())
    if total == 0:
        return {}
    return {sector: round(value / total, 6) for sector, value in sorted(by_sector.items())}
