"""Attribution of a portfolio return: luck (riding the market) versus skill (alpha)."""

from __future__ import annotations

from layers.stats import safe_div


def luck_vs_skill(portfolio_return: float, market_return: float, beta: float) -> dict[str, float]:
    """Split a period's return into the market's part ``beta * market`` and the rest (alpha).

    ``skill_share = |alpha| / (|alpha| + |market part|)`` in [0, 1]; 0 when both parts are 0.
    """
    market_part = beta * market_return
    alpha = portfolio_return - market_part
    return {
        "market": market_part,
        "alpha": alpha,
        "skill_share": safe_div(abs(alpha), abs(alpha) + abs(market_part)),
    }
