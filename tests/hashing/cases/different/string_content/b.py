def f(ctx):
    return ctx.root("insights")
