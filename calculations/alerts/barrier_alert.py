"""Alert users likely (>= 50%) to hit a 15% stop-loss within a month on some holding."""

from __future__ import annotations

THRESHOLD = 0.5


def barrier_alert(ctx):
    """``{symbol, probability}`` for users at risk; no result (None) for everyone else."""
    risk = ctx.dep("barrier_risk")
    if risk is None or risk["max_probability"] < THRESHOLD:
        return None
    return {"symbol": risk["riskiest"], "probability": risk["max_probability"]}
