def f(x):
    return g(x, factor=2)
