def f(ctx):
    return ctx.root("prices")
