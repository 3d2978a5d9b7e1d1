def f(value):
    return value + 1
