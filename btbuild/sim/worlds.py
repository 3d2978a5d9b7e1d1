"""Value transforms that turn drawn or real records into the worlds calculations trip over.

All of them are pure functions of ``(value, random.Random)``: deterministic for a seed.

* :func:`perturb` - every number moves by a small log-normal factor (real data stays
  realistic, but is not the stored data itself);
* :func:`short` - positions (dicts inside lists) get negative quantities: the quantity-like
  key when there is one (``quantity``, ``units``, ``shares`` ...), else the first numeric key;
* :func:`equalize` - every element of a list takes the numbers of the first one (equal
  weights, equal prices, ties inside one record);
* :func:`seed_literals` - numbers and strings replaced by the code's literals (at, just below
  and just above), lists resized to the code's small integer literals and one either side.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from btbuild.sim.literals import Literals

QUANTITY_KEYS = ("quantity", "qty", "units", "shares", "amount", "size", "position", "weight")


def map_numbers(value: Any, change: Callable[[float], float]) -> Any:
    """``value`` with every number (not bool) replaced by ``change(number)``, ints kept ints."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        changed = change(float(value))
        return int(changed) if math.isfinite(changed) else value
    if isinstance(value, float):
        return change(value)
    if isinstance(value, dict):
        return {key: map_numbers(item, change) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [map_numbers(item, change) for item in value]
    return value


def map_lists(value: Any, change: Callable[[list[Any]], list[Any]]) -> Any:
    if isinstance(value, dict):
        return {key: map_lists(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return change([map_lists(item, change) for item in value])
    return value


def perturb(value: Any, rng: random.Random, sigma: float = 0.05) -> Any:
    return map_numbers(value, lambda x: x * math.exp(rng.gauss(0.0, sigma)))


def scale(value: Any, factor: float) -> Any:
    return map_numbers(value, lambda x: x * factor)


def _quantity_key(item: dict[str, Any]) -> str | None:
    for key in QUANTITY_KEYS:
        found = item.get(key)
        if isinstance(found, (int, float)) and not isinstance(found, bool):
            return key
    numeric = [
        k
        for k, v in sorted(item.items())
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    return numeric[0] if numeric else None


def short(value: Any, rng: random.Random, share: float = 0.5) -> Any:
    """Negate the quantity of about ``share`` of the positions (at least one when any)."""

    def change(items: list[Any]) -> list[Any]:
        if not items:
            return items
        first = rng.randrange(len(items))
        out = []
        for index, item in enumerate(items):
            key = _quantity_key(item) if isinstance(item, dict) else None
            if key is not None and (index == first or rng.random() < share):
                item = {**item, key: -abs(item[key]) if item[key] else -1}
            out.append(item)
        return out

    return map_lists(value, change)


def equalize(value: Any) -> Any:
    """Every list element of dicts gets the first element's numbers (equal weights)."""

    def change(items: list[Any]) -> list[Any]:
        if len(items) < 2 or not isinstance(items[0], dict):
            return items
        numbers = {
            k: v
            for k, v in items[0].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        return [{**item, **numbers} if isinstance(item, dict) else item for item in items]

    return map_lists(value, change)


def resize(items: list[Any], length: int, rng: random.Random) -> list[Any]:
    """``items`` cut or grown (with perturbed copies of its elements) to ``length``."""
    if length <= len(items) or not items:
        return items[:length]
    grown = list(items)
    while len(grown) < length:
        grown.append(perturb(items[rng.randrange(len(items))], rng))
    return grown


def seed_literals(value: Any, literals: Literals, rng: random.Random, share: float = 0.4) -> Any:
    """About ``share`` of the numbers and strings become literal values; lists get literal
    lengths (see the module docstring)."""
    numbers = literals.values()
    lengths = literals.lengths()
    strings = literals.strings

    def walk(item: Any) -> Any:
        if isinstance(item, bool) or item is None:
            return item
        if isinstance(item, (int, float)):
            if numbers and rng.random() < share:
                chosen = rng.choice(numbers)
                return int(chosen) if isinstance(item, int) and chosen.is_integer() else chosen
            return item
        if isinstance(item, str):
            return rng.choice(strings) if strings and rng.random() < share / 2 else item
        if isinstance(item, dict):
            return {key: walk(child) for key, child in item.items()}
        if isinstance(item, list):
            children = [walk(child) for child in item]
            if lengths and rng.random() < 0.7:
                children = resize(children, rng.choice(lengths), rng)
            return children
        return item

    return walk(value)


def partial(value: Any, back: int = 0) -> Any:
    """Date objects keep two thirds of their keys, not the same ones every day: the world's
    day keeps a third listed only that day (new listings) and a third listed every day; its
    earlier days keep that third and one listed only before (delisted since). Code looking up
    today's keys in earlier days' data (a symbol with no history) or the reverse takes its
    branches for missing keys. (Before, every day kept the same third: a symbol was never
    new, and ``if not volumes: continue`` over the look-back days never ran.)"""
    if not isinstance(value, dict):
        return value
    keep = (0, 1) if back == 0 else (1, 2)
    return {key: value[key] for index, key in enumerate(sorted(value)) if index % 3 in keep}


DATE_EDGES: dict[str, Callable[[Any], Any]] = {
    "zero": lambda v: map_numbers(v, lambda x: 0.0),
    "zero_prices": lambda v: map_numbers(v, lambda x: 0.0),
    "negative": lambda v: map_numbers(v, lambda x: -x),
    "tiny": lambda v: scale(v, 1e-12),
    "huge": lambda v: scale(v, 1e9),
    "equal": equalize,
}
USER_EDGES: dict[str, Callable[[Any], Any]] = {
    "empty": lambda v: map_lists(v, lambda items: []),
    "single": lambda v: map_lists(v, lambda items: items[:1]),
    "zero": lambda v: map_numbers(v, lambda x: 0.0),
    "zero_users": lambda v: map_numbers(v, lambda x: 0.0),
    "negative": lambda v: map_numbers(v, lambda x: -x),
    "negative_users": lambda v: map_numbers(v, lambda x: -x),
    "tiny": lambda v: scale(v, 1e-12),
    "huge": lambda v: scale(v, 1e9),
    "equal": equalize,
}

# How a user of a crowd, real or drawn world differs from the record it derives from.
USER_MODES = ("tie", "short", "scaled", "scaled", "plain")


def user_variant(value: Any, mode: str, rng: random.Random) -> Any:
    if mode == "tie" or mode == "plain":
        return value
    if mode == "short":
        return short(value, rng)
    return scale(value, math.exp(rng.gauss(0.0, 0.7)))


__all__ = [
    "DATE_EDGES",
    "USER_EDGES",
    "equalize",
    "map_lists",
    "map_numbers",
    "perturb",
    "seed_literals",
    "short",
]
