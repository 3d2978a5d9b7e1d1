"""Module-level state a calculation changes between cells and users: noticed here.

A calculation module (or one of its helper modules) is imported once per process and reused
for many cells. Code that keeps state there (``_HISTORY.append(...)``, ``global COUNT``,
``Calc.seen += 1``, a default argument ``def f(memo=[])`` filled by its calls) may compute
something that depends on which cells the process computed before: a clean build, a build of
one date, ``--force``, ``--jobs 2`` and a long-lived worker would store different results,
each with exit 0. A memo cache filled on first use changes the same state harmlessly.

:func:`state_of` takes the state of a target's modules (the entry module and the helper
copies it imported, btbuild/execution/loader.py): every module-level name's object identity,
the size of module-level containers, the attributes of classes and of instances of classes
defined there, the defaults of functions. The loader compares it with a baseline (the first
cell a process commits for a target; the previous checked user of a per_user cell), and
btbuild/execution/fresh.py decides what a change means by computing again on a fresh import.
Limit: a change that keeps every container's size (overwriting a key, mutating a nested
object or an array in place) goes unseen.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from types import FunctionType, ModuleType

_CONTAINERS = (list, dict, set, bytearray, deque)
Shape = tuple[int, object]


def _size(value: object) -> object:
    return len(value) if isinstance(value, _CONTAINERS) else None


def _attributes(namespace: dict[str, object]) -> tuple[tuple[str, int, object], ...]:
    return tuple(
        (name, id(value), _size(value))
        for name, value in namespace.items()
        if not name.startswith("__")
    )


def _shape(value: object, own: frozenset[str]) -> object:
    """What can change in place about one module-level value (see the module docstring)."""
    if isinstance(value, _CONTAINERS):
        return len(value)
    if isinstance(value, FunctionType):
        defaults = (*(value.__defaults__ or ()), *(value.__kwdefaults__ or {}).values())
        return tuple((id(item), _size(item)) for item in defaults)
    if isinstance(value, type):
        return _attributes(dict(vars(value))) if value.__module__ in own else None
    if type(value).__module__ in own and hasattr(value, "__dict__"):
        return _attributes(dict(vars(value)))
    return None


def state_of(modules: Iterable[ModuleType]) -> dict[str, Shape]:
    """``{"<module>.<name>": (identity, shape)}`` of every module-level name."""
    modules = list(modules)
    own = frozenset(module.__name__ for module in modules)
    state: dict[str, Shape] = {}
    for module in modules:
        for name, value in list(vars(module).items()):
            if not name.startswith("__") and not isinstance(value, ModuleType):
                state[f"{module.__name__}.{name}"] = (id(value), _shape(value, own))
    return state


def changed(before: dict[str, Shape], after: dict[str, Shape]) -> list[str]:
    """The names whose state differs, sorted."""
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
