def f(ctx):
    return ctx.users
