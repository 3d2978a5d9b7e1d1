"""Unrealized P&L against average cost, absolute and as a share of the cost basis."""


class UnrealizedPnl:
    def process(self, ctx):
        prices = ctx.root("prices")
        pnl = 0.0
        basis = 0.0
        for position in ctx.user["portfolio"]["positions"]:
            bar = prices.get(position["symbol"])
            if bar is None or position["quantity"] <= 0:
                continue
            basis += position["quantity"] * position["avg_cost"]
            pnl += position["quantity"] * (bar["close"] - position["avg_cost"])
        pct = pnl / basis * 100.0 if basis > 0 else 0.0
        return {"pnl": round(pnl, 2), "pct": round(pct, 4)}
