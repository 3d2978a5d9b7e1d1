"""The probed values of changed statements (see :mod:`btbuild.sim.probes`): tables whose
entries, and class attributes whose binding, must be read at least once in the coverage
check's runs.

:class:`Table` (a dict) and :class:`Row` (a list) record which entries the code reads;
iterating, copying or printing them reads every entry, and they pickle and deep-copy as the
plain dict or list they stand for. :class:`Attribute` is a non-data descriptor recording
reads of a class attribute. ``probes`` is the :class:`~btbuild.sim.probes.Probes` whose
``seen`` sets they fill.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any


def is_table(node: ast.AST) -> bool:
    """A dict display whose keys are all constants (no ``**`` unpacking), or a list display
    (no ``*`` unpacking): its entries are looked up by key or index."""
    if isinstance(node, ast.List):
        return bool(node.elts) and not any(isinstance(e, ast.Starred) for e in node.elts)
    return (
        isinstance(node, ast.Dict)
        and bool(node.keys)
        and all(isinstance(key, ast.Constant) for key in node.keys)
    )


def is_attribute(statement: ast.AST) -> bool:
    """``NAME = value`` / ``NAME: type = value`` (no dunder name)."""
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets = [statement.target]
    else:
        return False
    return all(isinstance(t, ast.Name) and not t.id.startswith("__") for t in targets)


class Table(dict[Any, Any]):
    """A dict of a changed statement that records which of its entries the code reads."""

    __slots__ = ("_probes", "_sites")

    def __init__(self, probes: Any, sites: dict[Any, int], items: dict[Any, Any]) -> None:
        super().__init__(items)
        self._probes, self._sites = probes, sites

    def _read(self, key: Any) -> None:
        try:
            site = self._sites.get(key)
        except TypeError:  # an unhashable key: the dict raises it itself
            return
        if site is not None:
            self._probes.seen[site].add(True)

    def _read_all(self) -> None:
        for site in self._sites.values():
            self._probes.seen[site].add(True)

    def __getitem__(self, key: Any) -> Any:
        self._read(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._read(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._read(key)
        return super().__contains__(key)

    def pop(self, key: Any, *default: Any) -> Any:
        self._read(key)
        return super().pop(key, *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._read(key)
        return super().setdefault(key, default)

    def __iter__(self) -> Iterator[Any]:
        self._read_all()
        return super().__iter__()

    def keys(self) -> Any:
        self._read_all()
        return super().keys()

    def values(self) -> Any:
        self._read_all()
        return super().values()

    def items(self) -> Any:
        self._read_all()
        return super().items()

    def copy(self) -> dict[Any, Any]:
        self._read_all()
        return dict(super().items())

    def __repr__(self) -> str:
        self._read_all()
        return super().__repr__()

    def __reduce__(self) -> Any:  # pickled or deep-copied as the plain dict it stands for
        self._read_all()
        return (dict, (dict(super().items()),))


class Row(list[Any]):
    """A list of a changed statement that records which of its elements the code reads."""

    __slots__ = ("_probes", "_sites")

    def __init__(self, probes: Any, sites: dict[Any, int], items: list[Any]) -> None:
        super().__init__(items)
        self._probes, self._sites = probes, sites

    def _read(self, indices: Any) -> None:
        for index in indices:
            site = self._sites.get(index)
            if site is not None:
                self._probes.seen[site].add(True)

    def __getitem__(self, index: Any) -> Any:
        size = len(self)
        if isinstance(index, slice):
            self._read(range(*index.indices(size)))
        elif isinstance(index, int) and -size <= index < size:
            self._read((index % size,))
        return super().__getitem__(index)

    def _all(self) -> None:
        self._read(range(len(self)))

    def __iter__(self) -> Iterator[Any]:
        self._all()
        return super().__iter__()

    def __reversed__(self) -> Iterator[Any]:
        self._all()
        return super().__reversed__()

    def __contains__(self, value: object) -> bool:
        self._all()
        return super().__contains__(value)

    def index(self, *args: Any) -> int:
        self._all()
        return super().index(*args)

    def count(self, value: Any) -> int:
        self._all()
        return super().count(value)

    def copy(self) -> list[Any]:
        self._all()
        return list(super().__iter__())

    def __repr__(self) -> str:
        self._all()
        return super().__repr__()

    def __reduce__(self) -> Any:  # pickled or deep-copied as the plain list it stands for
        self._all()
        return (list, (list(super().__iter__()),))


class Attribute:
    """A class attribute of a changed assignment, recording that it was read (a non-data
    descriptor, so an instance attribute still shadows it; a value that is a descriptor
    itself, a function for one, is bound as it would be)."""

    __slots__ = ("_probes", "_site", "value")

    def __init__(self, probes: Any, site: int, value: Any) -> None:
        self._probes, self._site, self.value = probes, site, value

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        self._probes.seen[self._site].add(True)
        get = getattr(type(self.value), "__get__", None)
        return self.value if get is None else get(self.value, instance, owner)


__all__ = ["Attribute", "Row", "Table", "is_attribute", "is_table"]
