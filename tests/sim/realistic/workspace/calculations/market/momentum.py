"""Five-trading-day momentum of every symbol: the leaders, the laggards and the breadth."""

WINDOW = 5
TOP = 3


def momentum(ctx):
    today = ctx.root("prices")
    past = None
    seen = 0
    for back in range(1, 10):
        day = ctx.root("prices", days_ago=back)
        if day:
            seen += 1
            if seen == WINDOW:
                past = day
                break
    if past is None:
        return None
    moves = {}
    for symbol, bar in today.items():
        before = past.get(symbol)
        if before is not None and before["close"] > 0:
            moves[symbol] = round(bar["close"] / before["close"] - 1.0, 6)
    ranked = sorted(moves.items(), key=lambda item: (-item[1], item[0]))
    return {
        "leaders": [symbol for symbol, _ in ranked[:TOP]],
        "laggards": [symbol for symbol, _ in ranked[-TOP:]],
        "breadth": round(sum(1 for move in moves.values() if move > 0) / len(moves), 4),
    }
