def f(x):
    amount = x + 1
    return locals()
