"""Market breadth: advancing and declining symbols and their ratio."""


def breadth(ctx):
    moves = ctx.dep("daily_move") or {}
    up = sum(1 for move in moves.values() if move > 0)
    down = sum(1 for move in moves.values() if move < 0)
    ratio = up / down if down else None
    return {"advancing": up, "declining": down, "unchanged": len(moves) - up - down, "ratio": ratio}
