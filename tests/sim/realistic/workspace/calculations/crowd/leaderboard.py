"""The ten wealthiest users, the 90th percentile and median of worth, and how many hold 250k+."""

from corpuslib.bands import percentile

TOP = 10
RICH = 250_000.0


def leaderboard(ctx):
    books = ctx.dep("holdings") or {}
    worth = {user: book["worth"] for user, book in books.items()}
    if not worth:
        return None
    ranked = sorted(worth.items(), key=lambda item: (-item[1], item[0]))
    return {
        "users": len(worth),
        "top": [user for user, _ in ranked[:TOP]],
        "p90": round(percentile(list(worth.values()), 90), 2),
        "median": round(percentile(list(worth.values()), 50), 2),
        "rich": sum(1 for value in worth.values() if value >= RICH),
    }
