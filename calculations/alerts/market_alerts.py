"""Market-wide warnings: one-sided markets, sentiment against the tape, weak smart money."""

from __future__ import annotations

from layers.stats import mean, rounded, safe_div

ONE_SIDED = 0.7  # share of advancing (or declining) symbols
DIVERGENCE_BREADTH = 0.3
DIVERGENCE_SENTIMENT = 0.1
WEAK_SMART_MONEY = 30.0


def market_alerts(ctx):
    """``{alerts: [{kind, value}], count}``, alerts in a fixed order."""
    summary = ctx.dep("market_summary")
    board = ctx.dep("leaderboard")
    mood = ctx.dep("sentiment")
    alerts = []
    judged = summary["advancers"] + summary["decliners"] + summary["unchanged"]
    if judged:
        up = safe_div(summary["advancers"], judged)
        down = safe_div(summary["decliners"], judged)
        if up >= ONE_SIDED:
            alerts.append({"kind": "broad_rally", "value": rounded(up, 4)})
        if down >= ONE_SIDED:
            alerts.append({"kind": "broad_selloff", "value": rounded(down, 4)})
    if mood and mood["available"] and mood["symbols"]:
        feeling = mean(mood["symbols"].values())
        breadth = summary["breadth"]
        if (
            abs(breadth) >= DIVERGENCE_BREADTH
            and abs(feeling) >= DIVERGENCE_SENTIMENT
            and breadth * feeling < 0
        ):
            alerts.append({"kind": "sentiment_divergence", "value": rounded(feeling, 4)})
    if board and board["users"] and board["median"] < WEAK_SMART_MONEY:
        alerts.append({"kind": "weak_smart_money", "value": board["median"]})
    return {"alerts": alerts, "count": len(alerts)}
