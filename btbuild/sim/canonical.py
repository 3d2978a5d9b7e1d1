"""Canonical simulation outputs and their hashes.

Two runs are "the same behaviour" when their canonical outputs are equal:

* floats are compared **exactly**, as the build stores them (``repr``, the shortest text
  that reads back as the same float): a re-associated sum that changes the last bit is
  another result, since a clean build of the new code would store those bytes. Only
  ``-0.0`` is ``0.0`` (the build stores it so);
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

Before (evidence scheme 5), floats were rounded to 9 significant digits and ``abs(x) <
1e-12`` was 0: a change below one part in 10^9 (a fee of 1e-10 of the notional,
``round(x, 10)`` -> ``round(x, 12)``, ``x + 1e-13``) was proven cosmetic and the old results
kept, so an incremental build differed from a clean build of the same code.

:func:`stored_same` is the replay's comparison: the bytes the build would store
(:func:`btbuild.storage.canonical.canonical_bytes`); a value the build refuses equals
nothing.
"""

from __future__ import annotations

import math
from typing import Any

from btbuild.errors import CalculationError
from btbuild.hashing.digest import hash_json
from btbuild.storage.canonical import canonical_bytes

_LONGEST_INT = 10**4300  # str() of an int this large or larger is refused (4300 digits)


def canonical_number(value: float) -> Any:
    """A float exactly as stored (a float stays a float: ``1.0``, not ``1``)."""
    if math.isnan(value):
        return {"$float": "nan"}
    if math.isinf(value):
        return {"$float": "inf" if value > 0 else "-inf"}
    return value + 0.0  # + 0.0: no negative zero (the build stores -0.0 as 0.0)


def canonical_int(value: int) -> Any:
    """An int as it is; one the build cannot write (over 4300 digits) a marker."""
    if -_LONGEST_INT < value < _LONGEST_INT:
        return value
    return {"$invalid": "int over 4300 digits"}


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


def stored_bytes(value: Any) -> bytes | None:
    """The bytes a build would store for ``value``; None when the build refuses it."""
    try:
        return canonical_bytes(value)
    except (CalculationError, RecursionError):
        return None


def stored_same(new: Any, stored: Any) -> bool:
    """Whether a build of the new code would store exactly the stored value's bytes (a value
    the build refuses differs from everything)."""
    mine = stored_bytes(new)
    return mine is not None and mine == stored_bytes(stored)


def raised(kind: str) -> dict[str, str]:
    return {"$raised": kind}


def context_hash(output: Any) -> str:
    return hash_json(output)


def combined_hash(version: str, hashes: list[str]) -> str:
    return hash_json({"fabricator": version, "contexts": hashes})
