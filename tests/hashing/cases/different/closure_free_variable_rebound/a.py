def make(scale):
    offset = 1
    other = 2
    def apply(value):
        return value + offset
    return apply, other
