import math
def f(x):
    y = math.sqrt(x)
    return y
