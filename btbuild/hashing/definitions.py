"""Definition-level layers: only the top-level definitions a target reaches through imports.

Starting from the statements of the entry module that the entry needs (its code slice), every
import those statements run is followed: ``from m import f`` asks module ``m`` for the
statements ``f`` needs (the same slice rule as the entry's code hash: its definition, the
definitions it reads transitively, the module's non-definition statements and the import-time
effects that touch them), and the imports *those* statements run are followed in turn. A
module contributes ``(path, hash of its slice)``; editing a function of a shared helper module
therefore moves the layer hash of the targets that reach that function, and only theirs.

The whole module is taken instead (and said so, for ``btbuild hash``) when a slice cannot be
trusted statically:

* ``import m`` / ``import m.sub`` / ``from pkg import submodule``: the module object escapes,
  any attribute can be read from it (``getattr(m, name)``);
* ``from m import *``;
* the module reaches its own globals dynamically (``globals()``, ``eval``, ``importlib``,
  ``sys.modules`` ...), or a requested name is not bound by a top-level definition;
* package ``__init__.py`` files run by an import;
* the entry module is imported again by itself or a layer (then every layer is whole, as in
  hash scheme 2).

Nothing is parsed here: the per-statement imports come from the cached file facts.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

from btbuild.hashing.digest import hash_json
from btbuild.hashing.imports import package_inits, resolve_module
from btbuild.hashing.layers import FactsReader, relative_posix


@dataclass(frozen=True)
class LayerSlices:
    """What a target takes from each layer file: the layers hash and why some are whole."""

    digest: str
    files: tuple[Path, ...]  # sorted by posix path
    whole: tuple[tuple[str, str], ...]  # (workspace-relative path, reason), sorted


class _Demands:
    """Per file: the names asked for, or a reason the whole module is needed."""

    def __init__(self) -> None:
        self.names: dict[Path, set[str]] = {}
        self.whole: dict[Path, str] = {}
        self.done: dict[Path, frozenset[int] | None] = {}
        self.queue: deque[Path] = deque()

    def ask(self, path: Path, names: set[str] | None, reason: str = "") -> None:
        if names is None:
            if path not in self.whole:
                self.whole[path] = reason
                self.queue.append(path)
            return
        wanted = self.names.get(path)
        if wanted is None:
            self.names[path] = set(names)
            self.queue.append(path)
        elif not names <= wanted:
            wanted |= names
            if path not in self.whole:
                self.queue.append(path)


def layer_slices(
    entry_file: Path,
    entry_attr: str,
    root: Path,
    reader: FactsReader,
    *,
    all_files: tuple[Path, ...],
    imports_entry: bool,
    any_module: str = "",
) -> LayerSlices:
    """The definition-level layer hash of one target. ``all_files`` are its layer files as
    the module-level scan found them (the fallback when the entry module is imported again,
    or when ``any_module`` says why any module of the workspace may be imported)."""
    if any_module:
        return _whole_layers(all_files, root, reader, f"may be imported: {any_module}")
    if imports_entry:
        return _whole_layers(all_files, root, reader, "the entry module is imported again")
    search_dirs = tuple(dict.fromkeys((entry_file.parent, root)))
    demands = _Demands()
    start = reader.slice(entry_file, frozenset((entry_attr.split(".")[0],)))
    _follow(entry_file, start, demands, reader, search_dirs)
    while demands.queue:
        path = demands.queue.popleft()
        if path == entry_file:
            continue
        facts = reader(path)
        if path in demands.whole:
            included: frozenset[int] | None = None
        else:
            included = reader.slice(path, frozenset(demands.names[path]))
            if included is None:
                demands.whole[path] = (
                    "reaches its globals dynamically"
                    if facts.dynamic
                    else "a requested name is not a top-level definition"
                )
        if path in demands.done and demands.done[path] == included:
            continue
        demands.done[path] = included
        _follow(path, included, demands, reader, search_dirs)
    files = sorted((p for p in demands.done if p != entry_file), key=lambda p: p.as_posix())
    pairs = []
    for path in files:
        facts = reader(path)
        digest = facts.code_hash if path in demands.whole else facts.slice_hash(demands.done[path])
        pairs.append((relative_posix(path, root), digest))
    whole = sorted(
        (relative_posix(path, root), reason)
        for path, reason in demands.whole.items()
        if path != entry_file
    )
    return LayerSlices(hash_json(sorted(pairs)), tuple(files), tuple(whole))


def _follow(
    importer: Path,
    included: frozenset[int] | None,
    demands: _Demands,
    reader: FactsReader,
    search_dirs: tuple[Path, ...],
) -> None:
    """Ask for what the ``included`` statements of ``importer`` import (None: all of them)."""
    statements = reader(importer).statements
    if statements is None:  # unknown statement facts: every import, whole
        for record in reader(importer).imports:
            for name in record.names or ("",):
                item = (record.module, record.level, name)
            _ask_import(importer, item, demands, search_dirs)
        return
    for index, statement in enumerate(statements):
        # statements outside the slice are still run when the module is imported: what
        # they import contributes its import-time statements (an empty demand)
        needed = included is None or index in included
        for item in statement.imports:
            _ask_import(importer, item, demands, search_dirs, needed=needed)


def _ask_import(
    importer: Path,
    item: tuple[str, int, str],
    demands: _Demands,
    search_dirs: tuple[Path, ...],
    *,
    needed: bool = True,
) -> None:
    module, level, name = item
    if level:
        base = importer.parent
        for _ in range(level - 1):
            base = base.parent
        dirs: tuple[Path, ...] = (base,)
    else:
        dirs = search_dirs
    if name and name != "*":
        submodule = f"{module}.{name}" if module else name
        found = resolve_module(submodule, dirs)
        if found is not None:  # from pkg import submodule: the module object escapes
            whole: set[str] | None = None if needed else set()
            _ask_module(submodule, found, whole, "imported as a module object", demands)
            if module:
                parent = resolve_module(module, dirs)
                if parent is not None:
                    _ask_module(module, parent, {name} if needed else set(), "", demands)
            return
    if not module:  # from . import name: a name of the package's __init__.py
        init = dirs[0] / "__init__.py"
        if level and name and init.is_file():
            demands.ask(init, {name} if needed and name != "*" else (None if needed else set()))
        return
    found = resolve_module(module, dirs)
    if found is None:
        return  # the standard library or a third-party package: the infra hash's business
    if not needed:
        _ask_module(module, found, set(), "", demands)
    elif name == "*":
        _ask_module(module, found, None, "star import", demands)
    elif name:
        _ask_module(module, found, {name}, "", demands)
    else:
        _ask_module(module, found, None, "imported as a module object", demands)


def _ask_module(
    module: str, found: Path, names: set[str] | None, reason: str, demands: _Demands
) -> None:
    for init in package_inits(module, found):
        demands.ask(init, None, "package __init__")
    if found.name == "__init__.py" and names is not None:
        demands.ask(found, names)
    else:
        demands.ask(found, names, reason)


def _whole_layers(
    files: tuple[Path, ...], root: Path, reader: FactsReader, reason: str
) -> LayerSlices:
    pairs = sorted((relative_posix(path, root), reader(path).code_hash) for path in files)
    whole = tuple(sorted((relative_posix(path, root), reason) for path in files))
    return LayerSlices(hash_json(pairs), tuple(files), whole)
