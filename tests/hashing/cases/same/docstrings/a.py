class Risk:
    def process(self, ctx):
        return ctx.root("prices")
def helper():
    pass
