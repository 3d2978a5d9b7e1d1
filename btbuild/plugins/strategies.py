"""Hypothesis strategies shared by the shipped sources (imported lazily: hypothesis is slow to import)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_scalars() -> st.SearchStrategy[Any]:
    return (
        st.none()
        | st.booleans()
        | st.integers(-(2**53), 2**53)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12)
    )


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value (no NaN/Infinity), nested a few levels deep."""
    return st.recursive(
        json_scalars(),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def json_objects(max_leaves: int = 12) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object (the value of a date-scope source is always one)."""
    return st.dictionaries(st.text(max_size=8), json_values(max_leaves), max_size=6)
