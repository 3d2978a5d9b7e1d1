def make(scale):
    offset = scale * 2
    def apply(value):
        shifted = value + offset
        return shifted * scale
    return apply
