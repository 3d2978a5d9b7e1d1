class C:
    def process(self, ctx):
        self.count = 1
        return self.count
