"""One-day 95% parametric value at risk of a user's holdings."""

from __future__ import annotations

from layers.risk import parametric_var
from layers.stats import rounded, safe_div


def value_at_risk(ctx):
    """``{var_95, fraction}``: the loss exceeded one day in twenty, and its share of the total."""
    risk, value = ctx.dep("portfolio_risk"), ctx.dep("portfolio_value")
    if risk is None or value is None:
        return None
    var = parametric_var(value["market_value"], risk["volatility"])
    return {
        "var_95": rounded(var, 2),
        "fraction": rounded(safe_div(var, value["total"]) if value["total"] > 0 else 0.0, 6),
    }
