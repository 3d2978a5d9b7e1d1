def f(rows):
    squares = [r * r for r in rows if r > 0]
    lookup = {k: v for k, v in zip(rows, squares)}
    gen = sum(x for x in rows)
    return squares, lookup, gen, {s for s in rows}
