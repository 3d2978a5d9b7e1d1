"""A user's market value: positions at today's close plus cash."""


def market_value(ctx):
    book = ctx.user["portfolio"]
    prices = ctx.root("prices")
    invested = 0.0
    for position in book["positions"]:
        bar = prices.get(position["symbol"])
        if bar is None:
            continue
        invested += position["quantity"] * bar["close"]
    return {
        "invested": round(invested, 2),
        "worth": round(invested + book["cash"], 2),
        "positions": len(book["positions"]),
    }
