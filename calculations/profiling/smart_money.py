"""The smart-money score (0-100): skill, efficiency, discipline and patience combined."""

from __future__ import annotations

from layers.profiling import smart_money_components, smart_money_score
from layers.stats import rounded


def smart_money(ctx):
    """``{score, components}``; needs geometry and attribution, and reads behaviour if the user traded.

    A user with no trades this week is neither a revenge trader nor disposition-biased.
    """
    geometry, split = ctx.dep("risk_geometry"), ctx.dep("attribution")
    if geometry is None or split is None:
        return None
    behaviour = ctx.dep("trade_behaviour") or {"revenge": 0.0, "disposition_skew": 0.0}
    components = smart_money_components(
        split["skill_share"],
        geometry["efficiency"],
        behaviour["revenge"],
        behaviour["disposition_skew"],
    )
    return {
        "score": rounded(smart_money_score(components), 2),
        "components": {name: rounded(value, 4) for name, value in components.items()},
    }
