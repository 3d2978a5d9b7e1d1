"""Each symbol's close-to-close return (symbols without a usable previous close are left out)."""


def daily_move(ctx):
    today = ctx.root("prices")
    before = ctx.root("prices", days_ago=1) or {}
    moves = {}
    for symbol, bar in today.items():
        previous = before.get(symbol)
        if previous is None or previous["close"] <= 0:
            continue
        moves[symbol] = round(bar["close"] / previous["close"] - 1.0, 8)
    return moves
