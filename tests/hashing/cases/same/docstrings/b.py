"""Module docstring."""
class Risk:
    """Class docstring."""
    def process(self, ctx):
        """Method docstring."""
        return ctx.root("prices")
def helper():
    """Only a docstring."""
