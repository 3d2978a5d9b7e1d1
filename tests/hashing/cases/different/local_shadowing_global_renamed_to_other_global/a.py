scale = 2
factor = 3
def f(x):
    scale = 10
    return x * scale
