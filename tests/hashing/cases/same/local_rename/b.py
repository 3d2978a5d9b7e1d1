class PnL:
    def process(self, ctx):
        holdings = ctx.user["portfolio"]
        acc = 0.0
        for h in holdings:
            acc += h["qty"] * h["price"]
        return {"pnl": acc}
