def f(rows):
    sq = [value * value for value in rows if value > 0]
    table = {key: val for key, val in zip(rows, sq)}
    g = sum(item for item in rows)
    return sq, table, g, {e for e in rows}
