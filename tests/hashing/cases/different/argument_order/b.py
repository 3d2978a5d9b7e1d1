def f(a, b):
    return g(b, a)
