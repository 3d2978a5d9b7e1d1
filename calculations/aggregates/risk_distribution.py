"""Weekly distribution of risk scores and the population's total value at risk."""

from __future__ import annotations

import math

from layers.stats import percentile, rounded

HIGH_RISK = 70.0


def risk_distribution(ctx):
    """``{users, p10, p50, p90, high_risk, total_var_95}``."""
    scores = [v["score"] for v in (ctx.dep("portfolio_risk") or {}).values() if v]
    var = [v["var_95"] for v in (ctx.dep("value_at_risk") or {}).values() if v]
    return {
        "users": len(scores),
        "p10": rounded(percentile(scores, 10), 2),
        "p50": rounded(percentile(scores, 50), 2),
        "p90": rounded(percentile(scores, 90), 2),
        "high_risk": sum(1 for score in scores if score >= HIGH_RISK),
        "total_var_95": rounded(math.fsum(var), 2),
    }
