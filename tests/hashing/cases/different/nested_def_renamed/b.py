def outer():
    def assist():
        return 1
    return assist
