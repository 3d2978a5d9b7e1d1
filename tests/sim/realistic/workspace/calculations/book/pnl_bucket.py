"""Unrealized P&L of a user's open positions as a percentage of their cost, in buckets."""

BUCKETS = [(-10.0, "deep_loss"), (-2.0, "loss"), (2.0, "flat"), (10.0, "gain")]


class PnlBucket:
    def process(self, ctx):
        prices = ctx.root("prices")
        cost = 0.0
        pnl = 0.0
        for position in ctx.user["portfolio"]["positions"]:
            bar = prices.get(position["symbol"])
            if bar is None or position["quantity"] <= 0:
                continue
            cost += position["quantity"] * position["avg_cost"]
            pnl += position["quantity"] * (bar["close"] - position["avg_cost"])
        if cost <= 0:
            return None
        pct = round(100.0 * pnl / cost, 1)
        bucket = next((label for edge, label in BUCKETS if pct < edge), "big_gain")
        return {"pct": pct, "bucket": bucket, "pnl": round(pnl, 2)}
