"""The three largest users by worth and the population's total worth."""

TOP = 3


def top_holders(ctx):
    values = ctx.dep("market_value") or {}
    ranked = sorted(values.items(), key=lambda item: (-item[1]["worth"], item[0]))
    return {
        "top": [user for user, _ in ranked[:TOP]],
        "total": round(sum(v["worth"] for v in values.values()), 2),
        "users": len(values),
    }
