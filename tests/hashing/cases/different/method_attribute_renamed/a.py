class C:
    def process(self, ctx):
        self.total = 1
        return self.total
