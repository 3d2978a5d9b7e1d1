"""Which modules a file imports, and where each one comes from.

:func:`resolve_module` is *the* module resolution rule of btbuild: the executor's loader
uses it too, so what is hashed is exactly what runs. An absolute import of ``a.b`` is looked
up as ``<dir>/a/b.py`` then ``<dir>/a/b/__init__.py`` for each search dir in order (the
folder of the calculation's entry file, then the workspace root); the first hit wins.
Relative imports resolve against the importing file's folder. Anything not found there is
the standard library (``sys.stdlib_module_names``) or a third-party distribution.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_STDLIB = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)


@dataclass(frozen=True)
class ImportRecord:
    """One imported module as written: ``from ..m import a, b`` is ``("m", 2, ("a", "b"))``.

    ``import a.b as c`` is ``("a.b", 0, ())``; ``from . import x`` is ``("", 1, ("x",))``.
    Records are kept unresolved (and cached that way) because resolution depends on the
    files around, which may change while this file does not.
    """

    module: str
    level: int = 0
    names: tuple[str, ...] = ()


def collect_imports(tree: ast.AST) -> tuple[ImportRecord, ...]:
    """Every import statement of a parsed module (:mod:`ast`), including those inside functions.

    Records are de-duplicated and kept in first-seen order.
    """
    records: list[ImportRecord] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            records.extend(ImportRecord(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            records.append(ImportRecord(node.module or "", node.level, names))
    return tuple(dict.fromkeys(records))


def module_candidates(name: str, directory: Path) -> tuple[Path, Path]:
    """The two files ``name`` may live in under ``directory``: ``a/b.py`` and ``a/b/__init__.py``."""
    parts = name.split(".")
    base = directory.joinpath(*parts[:-1])
    return base / f"{parts[-1]}.py", base / parts[-1] / "__init__.py"


def resolve_module(name: str, search_dirs: Sequence[Path]) -> Path | None:
    """The workspace file that module ``name`` resolves to, or None if it is not local.

    For each directory in ``search_dirs`` (in order) try ``<dir>/a/b.py`` then
    ``<dir>/a/b/__init__.py``; the first existing file wins.
    """
    if not name or any(not part.isidentifier() for part in name.split(".")):
        return None
    for directory in search_dirs:
        for candidate in module_candidates(name, directory):
            if candidate.is_file():
                return candidate
    return None


def package_inits(name: str, module_file: Path) -> list[Path]:
    """The ``__init__.py`` files of the packages around ``module_file`` that import runs first.

    For ``a.b.c`` found at ``<dir>/a/b/c.py`` these are ``<dir>/a/__init__.py`` and
    ``<dir>/a/b/__init__.py`` where they exist.
    """
    parents = name.split(".")[:-1]
    if not parents:
        return []
    directory = module_file.parent
    if module_file.name == "__init__.py":
        directory = directory.parent
    inits: list[Path] = []
    for _ in parents:
        init = directory / "__init__.py"
        if init.is_file():
            inits.append(init)
        directory = directory.parent
    return inits[::-1]


def is_local_package_dir(name: str, search_dirs: Sequence[Path]) -> bool:
    """True if the top-level of ``name`` is a folder in a search dir (a namespace package)."""
    top = name.split(".")[0]
    return any((directory / top).is_dir() for directory in search_dirs)


def is_stdlib(name: str) -> bool:
    return name.split(".")[0] in _STDLIB
