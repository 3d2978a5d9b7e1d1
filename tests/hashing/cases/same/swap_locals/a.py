def f(x):
    a = x + 1
    b = x * 2
    return a - b
