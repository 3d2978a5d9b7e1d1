def f():
    import cmath
    return cmath.pi
