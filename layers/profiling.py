"""The smart-money score: one number from risk geometry, attribution and psychometrics."""

from __future__ import annotations

from layers.stats import clamp

WEIGHTS = {"skill": 0.35, "efficiency": 0.25, "discipline": 0.20, "patience": 0.20}


def smart_money_components(
    skill_share: float, efficiency: float, revenge_score: float, disposition_skew: float
) -> dict[str, float]:
    """The four components of the score, each in [0, 1] (1 = smart).

    ``skill`` is the alpha share of returns, ``efficiency`` the weight on the user's efficient
    frontier, ``discipline`` the absence of revenge trading, ``patience`` the absence of the
    disposition effect (a negative skew — cutting losers early — counts as fully patient).
    """
    return {
        "skill": clamp(skill_share, 0.0, 1.0),
        "efficiency": clamp(efficiency, 0.0, 1.0),
        "discipline": 1.0 - clamp(revenge_score, 0.0, 1.0),
        "patience": 1.0 - clamp(disposition_skew, 0.0, 1.0),
    }


def smart_money_score(components: dict[str, float]) -> float:
    """Weighted sum of :func:`smart_money_components`, scaled to [0, 100]."""
    total = sum(WEIGHTS[name] * clamp(components[name], 0.0, 1.0) for name in WEIGHTS)
    return clamp(100.0 * total, 0.0, 100.0)
