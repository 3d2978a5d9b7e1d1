"""The day's short book: accounts net short, total short value and the five largest shorts."""

TOP = 5


def short_book(ctx):
    accounts = ctx.dep("exposure") or {}
    shorts = {user: x["short"] for user, x in accounts.items() if x["short"] > 0}
    ranked = sorted(shorts.items(), key=lambda item: (-item[1], item[0]))
    return {
        "accounts": len(accounts),
        "net_short": sum(1 for x in accounts.values() if x["net"] < 0),
        "short_total": round(sum(shorts.values()), 2),
        "largest": [user for user, _ in ranked[:TOP]],
    }
