"""Alert when a user's risk score jumps since the previous day."""

from __future__ import annotations

from layers.stats import rounded

THRESHOLD = 10.0  # score points (0-100 scale)


class RiskIncrease:
    def process(self, ctx):
        """``{score, previous, change, alert}``; ``previous`` is null on the user's first day.

        The score is carried in the result so that tomorrow's ``ctx.previous`` has it.
        """
        risk = ctx.dep("portfolio_risk")
        if risk is None:
            return None
        before = ctx.previous["score"] if ctx.previous else None
        change = risk["score"] - before if before is not None else 0.0
        return {
            "score": risk["score"],
            "previous": before,
            "change": rounded(change, 2),
            "alert": change >= THRESHOLD,
        }
