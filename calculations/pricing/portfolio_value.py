"""A user's portfolio valued at today's closes."""

from __future__ import annotations

from layers.market import close_price, open_positions
from layers.stats import rounded


def portfolio_value(ctx):
    """Cash, market value, cost basis and unrealized P&L; unquoted positions are counted apart."""
    portfolio = ctx.user["portfolio"]
    if portfolio is None:
        return None
    prices = ctx.root("prices")
    market_value = priced_cost = 0.0
    positions = open_positions(portfolio)
    unpriced = 0
    for position in positions:
        close = close_price(prices, position["symbol"])
        if close <= 0:
            unpriced += 1  # a zero or missing quote is missing data, not a worthless holding
            continue
        quantity = float(position["quantity"])
        market_value += quantity * close
        priced_cost += quantity * float(position["avg_cost"])
    cash = float(portfolio.get("cash", 0.0))
    return {
        "cash": rounded(cash, 2),
        "market_value": rounded(market_value, 2),
        "cost_basis": rounded(priced_cost, 2),
        "unrealized_pnl": rounded(market_value - priced_cost, 2),
        "total": rounded(cash + market_value, 2),
        "positions": len(positions),
        "unpriced": unpriced,
    }
