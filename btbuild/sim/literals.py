"""The numbers and strings a calculation's code compares against: seeds for literal worlds.

A threshold that moved (``> 0.05`` became ``> 0.04``), a ``<`` that became ``<=`` against a
small count, a band table edited: the worlds must put values *at*, *just below* and *just
above* every literal of either version of the code, and give lists (and days, and users)
lengths equal to each small integer literal and one either side. :func:`harvest` collects the
literals of a target's entry file and the layers it imports; booleans, docstrings and huge
numbers are left out.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import xxhash

from btbuild.hashing.facts import decode_source
from btbuild.hashing.normalize import normalized_tree

MAX_NUMBERS = 48  # literals kept per target (the smallest magnitudes first: thresholds)
MAX_STRINGS = 32
MAX_STRING_LENGTH = 40
SMALL_COUNT = 200  # integers up to this are also list lengths and user counts


@dataclass(frozen=True)
class Literals:
    numbers: tuple[float, ...] = ()
    strings: tuple[str, ...] = ()

    @property
    def counts(self) -> tuple[int, ...]:
        """Small non-negative integer literals: list lengths and user counts to try."""
        return tuple(
            sorted({int(n) for n in self.numbers if float(n).is_integer() and 0 < n <= SMALL_COUNT})
        )

    def values(self) -> tuple[float, ...]:
        """Every number at, just below and just above each literal."""
        out: list[float] = []
        for number in self.numbers:
            if float(number).is_integer():
                out.extend((number - 1, number, number + 1))
            step = max(abs(number) * 1e-6, 1e-9)
            out.extend((number - step, number, number + step))
        return tuple(dict.fromkeys(out))

    def lengths(self) -> tuple[int, ...]:
        return tuple(sorted({max(0, c + d) for c in self.counts for d in (-1, 0, 1)}))

    def __bool__(self) -> bool:
        return bool(self.numbers or self.strings)

    def union(self, other: Literals) -> Literals:
        return Literals(
            _bounded(self.numbers + other.numbers, MAX_NUMBERS),
            tuple(sorted(set(self.strings) | set(other.strings)))[:MAX_STRINGS],
        )


def _bounded(numbers: Iterable[float], limit: int) -> tuple[float, ...]:
    unique = sorted(set(numbers), key=lambda n: (abs(n), n))
    return tuple(sorted(unique[:limit]))


def _from_tree(tree: ast.AST) -> tuple[set[float], set[str]]:
    numbers: set[float] = set()
    strings: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            operand = node.operand
            if isinstance(operand, ast.Constant) and _number(operand.value):
                numbers.add(-float(operand.value))  # type: ignore[arg-type]  # _number() made sure it is an int or float
        if not isinstance(node, ast.Constant):
            continue
        value = node.value
        if _number(value):
            numbers.add(float(value))  # type: ignore[arg-type]  # _number() made sure it is an int or float
        elif isinstance(value, str) and 0 < len(value) <= MAX_STRING_LENGTH:
            strings.add(value)
    return numbers, strings


def _number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) < 1e15
    )


def harvest(files: Iterable[Path]) -> Literals:
    """The literals of ``files`` (normalized: docstrings are not literals)."""
    numbers: set[float] = set()
    strings: set[str] = set()
    for path in files:
        found = _of_file(path)
        if found is not None:
            numbers |= found[0]
            strings |= found[1]
    return Literals(_bounded(numbers, MAX_NUMBERS), tuple(sorted(strings))[:MAX_STRINGS])


_HARVESTED: dict[bytes, tuple[set[float], set[str]]] = {}  # by the file's bytes' digest


def _of_file(path: Path) -> tuple[set[float], set[str]] | None:
    """The literals of one file (None when it cannot be read or parsed), computed once per
    content in a process."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    key = xxhash.xxh3_128_digest(raw)
    if key not in _HARVESTED:
        try:
            tree = normalized_tree(decode_source(raw, path=str(path)), path=str(path))
        except Exception:  # unreadable code fails the simulation itself, with its own message
            return None
        _HARVESTED[key] = _from_tree(tree)
    return _HARVESTED[key]


def forget() -> None:
    """Drop the kept literals (benchmarks measuring a fresh process)."""
    _HARVESTED.clear()


__all__ = ["Literals", "forget", "harvest"]
