FEE = 0.1
def f(x):
    return x * FEE
