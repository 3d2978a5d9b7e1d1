"""Long, short, gross and net exposure of a margin account, its equity and leverage."""


def exposure(ctx):
    account = ctx.user["accounts"]
    quotes = ctx.root("quotes")
    long_value = 0.0
    short_value = 0.0
    for line in account["positions"]:
        quote = quotes.get(line["symbol"])
        if quote is None:
            continue
        value = line["units"] * quote["px"]
        if value >= 0:
            long_value += value
        else:
            short_value -= value
    net = long_value - short_value
    equity = account["cash"] + net
    gross = long_value + short_value
    return {
        "long": round(long_value, 2),
        "short": round(short_value, 2),
        "gross": round(gross, 2),
        "net": round(net, 2),
        "equity": round(equity, 2),
        "leverage": round(gross / equity, 3) if equity > 0 else None,
    }
