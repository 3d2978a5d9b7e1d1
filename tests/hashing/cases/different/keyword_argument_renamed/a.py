def f(x):
    return g(x, scale=2)
