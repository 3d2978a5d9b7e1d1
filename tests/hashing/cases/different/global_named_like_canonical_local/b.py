_L1 = 5
def f(x):
    y = x + 1
    z = y * 2
    return z + z
