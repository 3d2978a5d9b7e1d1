def f(ctx):
    total = (
        ctx.root("prices")["a"]
        + ctx.root("prices")["b"]
        - ctx.dep("net_profit")
    )
    return {
        "total": total,
        "n": len(
            ctx.user["portfolio"]
        ),
    }
