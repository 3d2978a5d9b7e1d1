"""Branches inside one line: did the simulation take both outcomes of each condition there?

Line coverage (:mod:`btbuild.sim.coverage`) cannot see ``a if c else b``, ``x and y`` /
``x or y`` or a comprehension's ``if``: the line runs whichever way the condition goes. A
change hiding its new behaviour behind such a condition (``total * (2 if ctx.user.id ==
"u000500" else 1)``, ``... if ctx.date.month == 12 and ctx.date.day >= 29 else ...``) ran,
agreed on every fabricated world and replayed cell that never met the condition, and was
skipped as cosmetic with stale results for the user or the date that did.

So the coverage check's own runs of both versions load the changed files *instrumented*:
each condition inside a changed statement is wrapped in a probe recording its truth value
(``__btbuild_probe__(site, c)`` returns ``bool(c)``, which is what the conditional expression
or the filter evaluates anyway; in ``x and y`` the probe of ``x`` returns ``x`` itself). A
site that never went both ways is a coverage gap like a line branch never taken: the search
looks further, and what stays uncovered makes the verdict ``unproven``. Only the coverage
check's runs are instrumented: SimHashes and the replay run the code as it is.

So is a changed class attribute (``RATE = 0.03`` in ``class Gold(Base)``, read as
``self.RATE`` in a method of ``Base`` every user runs, with a ``Gold`` only for one user):
its value must be read from that binding at least once (:class:`Attribute`). A table is the
same kind of condition: a module or class-level dict display with constant keys in a changed
statement (``RATES = {"gold": 0.02, "plain": 0.0}`` read as ``RATES[tier]``, the tier
``"gold"`` only for one user) changes what the code computes only for the keys it is read
with; so does a list display (``RULES = [..., lambda x: x * 1.5]`` read as
``RULES[level]``). Each of its entries is a site that must be read at least once (``__btbuild_table__``
makes the dict a :class:`Table`, recording the keys read; iterating, copying or printing it
reads every entry). Before, the changed line ran at import, its reader ran for every user,
and the change was skipped as cosmetic with stale results for the user whose tier it was.

Sites are found statically, from the file's text and the changed statements' lines, so a
version whose file was never loaded instrumented shows every site as a gap (never as
covered).
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

from btbuild.sim.tables import Attribute, Row, Table, is_attribute, is_table

PROBE = "__btbuild_probe__"  # returns bool(value): conditions of ``if`` expressions, filters
PROBE_VALUE = "__btbuild_probe_value__"  # returns value: the operands of ``and`` / ``or``
PROBE_TABLE = "__btbuild_table__"  # returns the dict as a Table recording the keys read
PROBE_ATTRIBUTE = "__btbuild_attribute__"  # returns a class attribute recording its reads
_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

Key = tuple[int, int, str]  # (line, column, kind) of a condition in its file
READ = ("entry", "attr")  # kinds of sites that must be read once (not go both ways)


def _header_parts(statement: ast.stmt) -> Iterator[ast.AST]:
    """The expressions a statement evaluates itself (not those of the statements it holds)."""
    for name, value in ast.iter_fields(statement):
        if name in _BODIES:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, ast.AST):
                yield item


def _sites(
    tree: ast.Module, lines: frozenset[int], classes: frozenset[str] = frozenset()
) -> Iterator[tuple[ast.AST, str, int, Key, int]]:
    """``(node holding the condition, field, index or -1, key, statement line)`` for each
    condition inside a statement that starts on one of ``lines`` (definitions excluded)."""
    yield from _attributes(tree, lines, classes)
    outer = {id(statement) for statement in _outer(tree.body)}  # where tables are probed
    outer |= _local_tables(tree)
    for statement in ast.walk(tree):
        if not isinstance(statement, ast.stmt) or isinstance(statement, _DEFINITIONS):
            continue
        if statement.lineno not in lines:
            continue
        for part in _header_parts(statement):
            for node in ast.walk(part):
                if isinstance(node, ast.IfExp):
                    test = node.test
                    yield node, "test", -1, (test.lineno, test.col_offset, "if"), statement.lineno
                elif isinstance(node, ast.BoolOp):
                    kind = "and" if isinstance(node.op, ast.And) else "or"
                    for index, value in enumerate(node.values[:-1]):
                        key = (value.lineno, value.col_offset, kind)
                        yield node, "values", index, key, statement.lineno
                elif isinstance(node, ast.comprehension):
                    for index, test in enumerate(node.ifs):
                        key = (test.lineno, test.col_offset, "filter")
                        yield node, "ifs", index, key, statement.lineno
                elif id(statement) in outer and is_table(node):
                    field = "keys" if isinstance(node, ast.Dict) else "elts"
                    for index, entry in enumerate(getattr(node, field)):
                        key = (entry.lineno, entry.col_offset, "entry")
                        yield node, field, index, key, statement.lineno


def _outer(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module and class-level statements (a dict display in a function is mostly a record or
    an output, not a table looked up by key: it is probed only when looked up so, see
    :func:`_local_tables`)."""
    for statement in body:
        yield statement
        if isinstance(statement, ast.ClassDef):
            yield from _outer(statement.body)


def _local_tables(tree: ast.Module) -> set[int]:
    """Statements of functions binding a dict display to a name the function looks up with a
    computed key (``rates = {...}`` then ``rates[tier]`` or ``rates.get(tier)``)."""
    found: set[int] = set()
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        looked: set[str] = set()
        for node in ast.walk(function):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
                if not isinstance(node.slice, ast.Constant):
                    looked.add(node.value.id)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner, args = node.func.value, node.args
                lookup = node.func.attr in ("get", "pop", "setdefault") and bool(args)
                if lookup and isinstance(owner, ast.Name) and not isinstance(args[0], ast.Constant):
                    looked.add(owner.id)
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and is_table(node.value):
                target = node.targets[0]
                if isinstance(target, ast.Name) and target.id in looked:
                    found.add(id(node))
    return found


def _attributes(
    tree: ast.Module, lines: frozenset[int], known: frozenset[str] = frozenset()
) -> Iterator[tuple[ast.AST, str, int, Key, int]]:
    """The changed assignments of a class attribute (``RATE = 0.03`` in ``class Gold(Base)``,
    read as ``self.RATE`` by a method of ``Base`` that every user runs): the value must be read
    from that binding at least once. Only classes whose bases are classes of the same file or
    ``known`` plain classes of the target's other files, imported (``Base``, ``models.Base``):
    no metaclass, no ``Enum``, no model library that reads its class body itself."""
    local = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    for cls in ast.walk(tree):
        if not isinstance(cls, ast.ClassDef) or cls.keywords:
            continue
        if not all(_base_name(base) in local | known for base in cls.bases):
            continue
        for statement in cls.body:
            if statement.lineno not in lines or not is_attribute(statement):
                continue
            key = (statement.lineno, statement.col_offset, "attr")
            yield statement, "value", -1, key, statement.lineno


def _base_name(base: ast.AST) -> str | None:
    if isinstance(base, ast.Name):
        return base.id
    return base.attr if isinstance(base, ast.Attribute) else None


def plain_classes(files: Iterable[Path]) -> frozenset[str]:
    """The names of the classes of ``files`` (a target's entry and layers) built from plain
    classes only: no keyword (metaclass), every base ``object`` or such a class, transitively;
    a name also given to any other class (an ``Enum``, a model) is left out. Before, a changed
    attribute of a class whose base came from a layer (``class Gold(Base)``, ``Base`` imported)
    was not probed, and its change for one user was skipped as cosmetic (red team 24)."""
    classes: list[tuple[str, list[str | None], bool]] = []
    for path in files:
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = [_base_name(base) for base in node.bases]
                classes.append((node.name, bases, bool(node.keywords)))
    plain: set[str] = {"object"}
    grew = True
    while grew:
        grew = False
        for name, bases, keywords in classes:
            if name not in plain and not keywords and all(b in plain for b in bases):
                plain.add(name)
                grew = True
    plain -= {name for name, bases, keywords in classes if keywords or not set(bases) <= plain}
    return frozenset(plain - {"object"})


class Probes:
    """The conditions inside the changed statements of one version, and what they did."""

    def __init__(
        self, lines: dict[Path, frozenset[int]], classes: frozenset[str] = frozenset()
    ) -> None:
        self.lines = {path.resolve(): found for path, found in lines.items() if found}
        self.classes = classes  # plain classes of the other files (class attributes' bases)
        self.ids: dict[tuple[Path, Key], int] = {}
        self.statement: list[int] = []  # per site: the line of the statement holding it
        self.seen: list[set[bool]] = []
        for path, found in self.lines.items():
            try:
                tree = ast.parse(path.read_bytes(), filename=str(path))
            except (OSError, SyntaxError, ValueError):
                continue  # unreadable: the simulation fails on it itself
            for _, _, _, key, line in _sites(tree, found, classes):
                if (path, key) not in self.ids:
                    self.ids[(path, key)] = len(self.ids)
                    self.statement.append(line)
        self.seen = [set() for _ in self.ids]

    @property
    def files(self) -> frozenset[Path]:
        return frozenset(path for path, _ in self.ids)

    def hit(self, site: int, value: Any) -> bool:
        truth = bool(value)
        self.seen[site].add(truth)
        return truth

    def hit_value(self, site: int, value: Any) -> Any:
        self.seen[site].add(bool(value))
        return value

    def table(self, sites: tuple[tuple[Any, int], ...], items: Any) -> Table | Row:
        if isinstance(items, list):
            return Row(self, dict(sites), items)
        return Table(self, dict(sites), items)

    def attribute(self, site: int, value: Any) -> Any:
        kind = type(value)
        if any(hasattr(kind, name) for name in ("__set__", "__delete__", "__set_name__")):
            self.seen[site].add(True)  # a property and the like: kept as it is, not probed
            return value
        return Attribute(self, site, value)

    def compile(self, source: bytes, path: Path) -> CodeType:
        """``source`` of ``path`` with a probe around each known condition."""
        tree = ast.parse(source, filename=str(path))
        resolved = path.resolve()
        tables: dict[int, list[tuple[Any, int]]] = {}  # id(dict node) -> (key, site)
        found = self.lines.get(resolved, frozenset())
        for node, field, index, key, _ in list(_sites(tree, found, self.classes)):
            site = self.ids.get((resolved, key))
            if site is None:
                continue
            if field in ("keys", "elts"):  # a table's entry: its key, or its index in a list
                entry = node.keys[index] if field == "keys" else index  # type: ignore[attr-defined]  # a "keys" site is an ast.Dict
                tables.setdefault(id(node), []).append((getattr(entry, "value", entry), site))
                continue
            probe = {"values": PROBE_VALUE, "value": PROBE_ATTRIBUTE}.get(field, PROBE)
            old = getattr(node, field) if index < 0 else getattr(node, field)[index]
            call = ast.Call(ast.Name(probe, ast.Load()), [ast.Constant(site), old], [])
            ast.copy_location(call, old)
            if index < 0:
                setattr(node, field, call)
            else:
                getattr(node, field)[index] = call
        if tables:
            tree = _Tables(tables).visit(tree)
        ast.fix_missing_locations(tree)
        return compile(tree, str(path), "exec", dont_inherit=True)

    def prime(self, namespace: dict[str, Any]) -> None:
        """Give a module's globals the probes its instrumented code calls."""
        namespace[PROBE] = self.hit
        namespace[PROBE_VALUE] = self.hit_value
        namespace[PROBE_TABLE] = self.table
        namespace[PROBE_ATTRIBUTE] = self.attribute

    def gaps(self, lines: dict[Path, frozenset[int]]) -> list[tuple[Path, Key, bool]]:
        """``(file, key, outcome never seen)`` of the conditions on ``lines``, sorted."""
        wanted = {(path.resolve(), line) for path, found in lines.items() for line in found}
        out: list[tuple[Path, Key, bool]] = []
        for (path, key), site in self.ids.items():
            if (path, self.statement[site]) in wanted:
                seen = self.seen[site]
                outcomes = (True, False) if key[2] not in READ else (True,)  # read, at least once
                out.extend((path, key, outcome) for outcome in outcomes if outcome not in seen)
        return sorted(out, key=lambda gap: (str(gap[0]), gap[1], gap[2]))

    # -- loading -------------------------------------------------------------------------

    def loader(self, name: str, path: Path) -> importlib.abc.Loader | None:
        """An instrumenting loader for ``path`` when it holds conditions to probe."""
        return _Loader(name, str(path), self) if path.resolve() in self.files else None

    @contextmanager
    def importing(self) -> Iterator[None]:
        """Workspace modules imported in the block are instrumented when they hold sites."""
        finder = _Finder(self)
        sys.meta_path.insert(0, finder)
        try:
            yield
        finally:
            sys.meta_path.remove(finder)


class _Tables(ast.NodeTransformer):
    """Wraps each probed dict display: ``__btbuild_table__(((key, site), ...), {...})``."""

    def __init__(self, tables: dict[int, list[tuple[Any, int]]]) -> None:
        self.tables = tables

    def visit_List(self, node: ast.List) -> ast.AST:
        return self._wrap(node)

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        return self._wrap(node)

    def _wrap(self, node: ast.Dict | ast.List) -> ast.AST:
        self.generic_visit(node)
        sites = self.tables.get(id(node))
        if sites is None:
            return node
        pairs: Any = tuple(sites)  # a tuple of constants is a constant to the compiler
        call = ast.Call(ast.Name(PROBE_TABLE, ast.Load()), [ast.Constant(pairs), node], [])
        return ast.copy_location(call, node)


class _Loader(importlib.machinery.SourceFileLoader):
    """Compiles the probed source; never reads nor writes cached bytecode."""

    def __init__(self, fullname: str, path: str, probes: Probes) -> None:
        super().__init__(fullname, path)
        self.probes = probes

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        return self.probes.compile(self.get_data(path), Path(path))

    def exec_module(self, module: ModuleType) -> None:
        self.probes.prime(module.__dict__)
        super().exec_module(module)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, probes: Probes) -> None:
        self.probes = probes

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.has_location:
            return None
        loader = self.probes.loader(fullname, Path(spec.origin))
        if loader is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname,
            spec.origin,
            loader=loader,
            submodule_search_locations=spec.submodule_search_locations,
        )


def describe(key: Key) -> str:
    line, column, kind = key
    what = {
        "if": "the condition of an if expression",
        "filter": "a comprehension's filter",
        "entry": "the table entry",
        "attr": "the class attribute",
    }
    return what.get(kind, f"the left operand of {kind!r}") + f" at column {column + 1}"


__all__ = ["READ", "Probes", "describe"]
