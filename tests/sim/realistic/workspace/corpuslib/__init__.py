"""Helpers shared by the corpus calculations (a workspace layer module)."""
