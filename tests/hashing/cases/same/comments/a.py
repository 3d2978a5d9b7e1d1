class Risk:
    def process(self, ctx):
        prices = ctx.root("prices")
        return {"risk": prices["x"] * 2}
