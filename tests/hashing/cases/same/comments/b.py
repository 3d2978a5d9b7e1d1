# a calculation
class Risk:  # the class
    def process(self, ctx):
        # read prices
        prices = ctx.root("prices")  # date-level
        return {"risk": prices["x"] * 2}  # done
