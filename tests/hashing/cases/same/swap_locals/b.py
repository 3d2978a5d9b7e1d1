def f(x):
    b = x + 1
    a = x * 2
    return b - a
