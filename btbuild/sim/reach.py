"""Which functions of a target's files its entry can reach (see :mod:`btbuild.sim.changes`).

A changed function the entry cannot reach asks for no coverage, so this must be a superset:
by name, transitively; through the module or class-level statements binding a name a reached
statement reads (a dispatch table: ``SPECIAL = {"u000099": vip}``); every subclass of a
reached class; every function or class a decorator of the workspace's own may register;
and, once a reached statement reads a name by a computed string (``getattr``, ``globals()``,
``__dict__``...), every function. Before, a function reached only through a dispatch
dict, a decorator's registry or ``getattr`` asked for nothing, and its change for a user the
replay did not sample was skipped as cosmetic.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

Key = tuple[str, str]  # (shown path, qualified name)

# decorators that register nothing (the function stays reachable only by its name)
_PLAIN_DECORATORS = frozenset(
    [
        "staticmethod",
        "classmethod",
        "property",
        "setter",
        "getter",
        "deleter",
        "cached_property",
        "cache",
        "lru_cache",
        "wraps",
        "dataclass",
        "total_ordering",
        "abstractmethod",
        "overload",
        "final",
    ]
)
# names through which code reaches functions by a computed name: any such read makes every
# function of the target's files reachable
_DYNAMIC = frozenset(
    [
        "getattr",
        "globals",
        "vars",
        "locals",
        "eval",
        "exec",
        "__import__",
        "import_module",
        "attrgetter",
        "methodcaller",
        "__dict__",
        "__getattribute__",
        "__getattr__",
    ]
)


def registers(node: ast.AST) -> bool:
    """Whether a decorator of ``node`` may register it (one not in the plain ones)."""
    names: set[str] = set()
    for decorator in getattr(node, "decorator_list", []):
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute):
            names.add(target.attr)
        elif isinstance(target, ast.Name):
            names.add(target.id)
        else:
            names.add("<expression>")
    return not names <= _PLAIN_DECORATORS


def reachable(units: Mapping[Key, Any], entry: str, root: str) -> set[Key]:
    """Function units the entry can reach (a superset: names, not bindings). By name,
    transitively; through a module or class-level statement binding a name it reads
    (``SPECIAL = {"u000099": vip}``); every subclass of a reached class; every function or
    class registered by a decorator of the workspace's own; and, once a reached statement
    reads a name by a computed string (``getattr``, ``globals()``...), every function.
    Before, a function reached only through a dispatch dict, a decorator's registry or
    ``getattr`` asked for no coverage, and its change for a rare user was skipped as
    cosmetic."""
    by_name, bound = _names(units)
    pending = [key for key in units if key[0] == entry and key[1].split(".")[0] == root]
    pending += [key for key, unit in units.items() if unit.registered]
    seen: set[Key] = set()
    followed: set[str] = set()
    while pending:
        key = pending.pop()
        if key in seen:
            continue
        seen.add(key)
        unit = units[key]
        if unit.kind == "class":  # every method of a reached class, and its subclasses
            name = key[1].split(".")[-1]
            pending.extend(
                k
                for k, other in units.items()
                if (k[0] == key[0] and k[1].startswith(key[1] + ".")) or name in other.bases
            )
        names = [name for item in unit.items for name in item.loads]
        while names:
            name = names.pop()
            if name in followed:
                continue
            followed.add(name)
            if name in _DYNAMIC:
                pending.extend(k for k, other in units.items() if other.kind != "module")
            pending.extend(by_name.get(name, ()))
            names.extend(loaded for item in bound.get(name, ()) for loaded in item.loads)
    return {key for key in seen if units[key].kind == "function"}


def _names(units: Mapping[Key, Any]) -> tuple[dict[str, list[Key]], dict[str, list[Any]]]:
    """Units by their name, and the module or class-level statements binding (or changing
    in place) each name."""
    by_name: dict[str, list[Key]] = {}
    bound: dict[str, list[Any]] = {}
    for key, unit in units.items():
        by_name.setdefault(key[1].split(".")[-1], []).append(key)
        if unit.kind != "function":
            for item in unit.items:
                for name in item.binds | item.mutates:
                    bound.setdefault(name, []).append(item)
    return by_name, bound


__all__ = ["reachable", "registers"]
