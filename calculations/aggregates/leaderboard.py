"""The day's smart-money leaderboard and score distribution."""

from __future__ import annotations

from layers.stats import mean, percentile, rounded

TOP = 10


def leaderboard(ctx):
    """``{users, mean, median, p90, top: [{user, score}]}``; ties rank by user id."""
    scores = {
        user: value["score"] for user, value in (ctx.dep("smart_money") or {}).items() if value
    }
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    values = list(scores.values())
    return {
        "users": len(scores),
        "mean": rounded(mean(values), 4),
        "median": rounded(percentile(values, 50), 4),
        "p90": rounded(percentile(values, 90), 4),
        "top": [{"user": user, "score": score} for user, score in ranked],
    }
