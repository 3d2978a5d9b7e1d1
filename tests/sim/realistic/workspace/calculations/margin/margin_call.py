"""Margin check: 25% maintenance on gross exposure plus a 5% surcharge on the short side."""

MAINTENANCE = 0.25
SHORT_SURCHARGE = 0.05
WARNING = 0.1


def margin_call(ctx):
    x = ctx.dep("exposure")
    if x is None:
        return None
    required = MAINTENANCE * x["gross"] + SHORT_SURCHARGE * x["short"]
    excess = x["equity"] - required
    if excess < 0:
        level = "call"
    elif excess < WARNING * required:
        level = "warning"
    else:
        level = "ok"
    return {"required": round(required, 2), "excess": round(excess, 2), "level": level}
