def f(a, b):
    return g(a, b), [1, 2], {"k": 1}
