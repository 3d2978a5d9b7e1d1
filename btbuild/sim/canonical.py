"""Canonical simulation outputs and their hashes.

Two runs are "the same behaviour" when their canonical outputs are equal:

* floats are rounded to ``SIGNIFICANT_DIGITS`` (9) significant digits, so re-associated
  sums (``a + (b + c)`` versus ``(a + b) + c``) and algebraically equal rewrites agree;
  values with ``abs(x) < ZERO_BELOW`` (1e-12) are 0 (cancellation residue such as
  ``0.1 + 0.2 - 0.3``), and ``-0.0`` is ``0.0``;
* ints that equal a float compare equal to it (``1 == 1.0``, as in JSON);
* dict key order is irrelevant, tuples are lists;
* NaN and infinities, and values that are not JSON, become markers: the real build refuses
  them, so a change between them and a number is a behaviour change;
* an exception is the output ``{"$raised": "ZeroDivisionError"}`` (the type, not the message,
  which may hold addresses or set orders); a time-out is ``{"$raised": "timeout"}``.

The price of rounding: a change smaller than one part in 10^9 is not seen. Results meant
to be exact to that level should be rounded by the calculation itself.
"""

from __future__ import annotations

import math
from typing import Any

from btbuild.hashing.digest import hash_json

SIGNIFICANT_DIGITS = 9
ZERO_BELOW = 1e-12


def canonical_number(value: float) -> Any:
    if math.isnan(value):
        return {"$float": "nan"}
    if math.isinf(value):
        return {"$float": "inf" if value > 0 else "-inf"}
    if abs(value) < ZERO_BELOW:
        return 0
    rounded = float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded


def canonical(value: Any) -> Any:
    """The canonical form of a calculation output (see the module docstring)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else canonical_number(float(value))
    if isinstance(value, float):
        return canonical_number(value)
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            return {"$invalid": "dict with non-string keys"}
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return {"$invalid": type(value).__name__}


def raised(kind: str) -> dict[str, str]:
    return {"$raised": kind}


def context_hash(output: Any) -> str:
    return hash_json(output)


def combined_hash(version: str, hashes: list[str]) -> str:
    return hash_json({"fabricator": version, "contexts": hashes})
