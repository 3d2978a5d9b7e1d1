def make(scale):
    base = scale * 2
    def apply(value):
        moved = value + base
        return moved * scale
    return apply
