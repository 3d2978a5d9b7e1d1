def f(x):
    total = x + 1
    return locals()
