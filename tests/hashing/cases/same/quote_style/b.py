def f(ctx):
    return {"risk": ctx.root("prices"), 'note': "it's"}
