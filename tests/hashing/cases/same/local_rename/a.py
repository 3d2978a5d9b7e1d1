class PnL:
    def process(self, ctx):
        positions = ctx.user["portfolio"]
        total = 0.0
        for position in positions:
            total += position["qty"] * position["price"]
        return {"pnl": total}
