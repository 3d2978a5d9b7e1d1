def f(ctx):
    return ctx.user
