"""Canonical simulation outputs and their hashes.

Two runs are "the same behaviour" when their canonical outputs are equal:

* floats are rounded to ``SIGNIFICANT_DIGITS`` (9) significant digits, so re-associated
  sums (``a + (b + c)`` versus ``(a + b) + c``) and algebraically equal rewrites agree;
  values with ``abs(x) < ZERO_BELOW`` (1e-12) are 0 (cancellation residue such as
  ``0.1 + 0.2 - 0.3``), and ``-0.0`` is ``0.0``;
* an int and a float stay apart (``1`` and ``1.0``: the stored JSON differs, ``"1"`` against
  ``"1.0"``, and so does what a dependent reading it computes: ``str(x)``, ``isinstance``),
  and so do ``True`` and ``1``: compare canonical outputs with :func:`same`, never ``==``
  (``1 == 1.0 == True`` in Python);
* dict key order is irrelevant;
* NaN and infinities, and values that are not JSON, become markers: the real build refuses
  them, so a change between them and a number is a behaviour change. Tuples are such values:
  the build refuses them (they would read back as lists), so a list turned into a tuple is a
  behaviour change (the new code fails where the old one stored a result);
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
    """A float rounded to ``SIGNIFICANT_DIGITS``; a float stays a float (``1.0``, not ``1``)."""
    if math.isnan(value):
        return {"$float": "nan"}
    if math.isinf(value):
        return {"$float": "inf" if value > 0 else "-inf"}
    if abs(value) < ZERO_BELOW:
        return 0.0
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}") + 0.0  # + 0.0: no negative zero


def canonical_int(value: int) -> Any:
    """An int as it is; one beyond 2**53 rounded like a float, but kept an int."""
    if abs(value) < 2**53:
        return value
    return int(float(f"{float(value):.{SIGNIFICANT_DIGITS}g}"))


def canonical(value: Any) -> Any:
    """The canonical form of a calculation output (see the module docstring)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return canonical_int(int(value))
    if isinstance(value, float):
        return canonical_number(float(value))
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            return {"$invalid": "dict with non-string keys"}
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return {"$invalid": type(value).__name__}


def same(first: Any, second: Any) -> bool:
    """Whether two outputs are the same behaviour: equal canonical JSON (``==`` would take
    ``1`` for ``1.0`` and ``True``)."""
    return context_hash(canonical(first)) == context_hash(canonical(second))


def raised(kind: str) -> dict[str, str]:
    return {"$raised": kind}


def context_hash(output: Any) -> str:
    return hash_json(output)


def combined_hash(version: str, hashes: list[str]) -> str:
    return hash_json({"fabricator": version, "contexts": hashes})
