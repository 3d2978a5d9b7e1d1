def f(amount):
    return amount + 1
