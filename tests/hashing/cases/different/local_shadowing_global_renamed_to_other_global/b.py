scale = 2
factor = 3
def f(x):
    factor = 10
    return x * scale
