"""What changed between two versions of a target's code, statement by statement.

Both versions are read the way the code hash reads them (:func:`normalized_tree`: docstrings
dropped, function locals renamed), so a renamed local or a reformatted line is no change. Each
file is cut into *units*: every function (methods and nested functions too, by qualified
name), every class body and the module body. Each unit is a sequence of *items*, one per
statement (a compound statement contributes its header - the ``if`` test, the ``for`` target
and iterable - and then its bodies between structural markers). Units of the same file and
qualified name are aligned with :class:`difflib.SequenceMatcher`; items outside the matching
blocks are *changed*, in the old version (replaced or deleted) and in the new one (replaced or
inserted). A unit found in one version only is changed as a whole.

What a simulation must cover (see :mod:`btbuild.sim.coverage`) is the changed items of the
function units the target can reach: its entry and every function of its entry file and
layers it refers to, transitively - by name, through dispatch tables, decorators' registries,
subclasses and ``getattr`` (:mod:`btbuild.sim.reach`). Module-level and class-body statements run at import
time, so they are always covered; when one of them changes a name (a constant, a table of
bands, an import), every function statement reading that name counts as changed in both
versions, and when a ``def`` line changes (defaults, decorators) its whole body does.
"""

from __future__ import annotations

import ast
import builtins
import copy
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from btbuild.hashing.cache import HashCache
from btbuild.hashing.facts import decode_source
from btbuild.hashing.layers import FactsReader, LayerScanner, relative_posix
from btbuild.hashing.normalize import normalized_tree
from btbuild.sim.constants import Found, changed_constants, found
from btbuild.sim.flow import flow_calls
from btbuild.sim.reach import reachable, registers
from btbuild.sim.tables import is_attribute, is_table
from btbuild.workspace.model import Target, Workspace

_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_BUILTINS = frozenset(dir(builtins))


# file facts by the file's bytes, for the whole process: verify and the build's coverage check
# scan the same files for each version, the literals and the change (a file's facts depend
# only on its bytes, so an edited file is simply another entry)
_FACTS = HashCache()


def forget() -> None:
    """Drop the kept file facts (benchmarks measuring a fresh process)."""
    global _FACTS
    _FACTS = HashCache()


@dataclass
class _Item:
    key: str
    line: int  # 0 for structural markers
    loads: frozenset[str] = frozenset()  # names and attribute names the statement reads
    binds: frozenset[str] = frozenset()  # module/class-level names the statement binds
    # names whose objects the statement may change in place (``VIP.update(...)``)
    mutates: frozenset[str] = frozenset()
    loop: int = -1  # index of the outermost loop header around it in its unit (-1: none)
    table: bool = False  # it holds a dict display with constant keys (probes.py: entries)
    assign: bool = False  # ``NAME = value``: in a class body, a probed attribute (probes.py)
    consts: Found = Found()  # its constants (btbuild/sim/constants.py)


@dataclass
class _Unit:
    kind: str  # "function", "class" or "module"
    items: list[_Item] = field(default_factory=list)
    # a function or class that code may reach without naming it: registered by a decorator
    # of the workspace's own, or a class whose bases name another (a subclass)
    registered: bool = False
    bases: frozenset[str] = frozenset()
    params: frozenset[str] = frozenset()  # a function's parameters
    header: frozenset[str] = frozenset()  # names its defaults and decorators read (def time)


@dataclass(frozen=True)
class VersionFiles:
    """One version of a target's code: its entry and layer files, shown relative to ``root``."""

    root: Path
    entry: Path
    entry_attr: str
    files: tuple[Path, ...]  # entry first, then layers

    @classmethod
    def of(cls, target: Target, workspace: Workspace) -> VersionFiles:
        layers = LayerScanner(workspace.root, FactsReader(_FACTS)).scan(target.entry_file).files
        return cls(
            workspace.root, target.entry_file, target.entry_attr, (target.entry_file, *layers)
        )

    def shown(self, path: Path) -> str:
        return relative_posix(path, self.root)


@dataclass(frozen=True)
class CodeChange:
    """The lines each version must run: ``lines[path]`` statements, ``branches[path]`` the
    subset that must also go both ways when coverage.py sees a branch there."""

    old: VersionFiles
    new: VersionFiles
    old_lines: dict[Path, frozenset[int]]
    new_lines: dict[Path, frozenset[int]]
    # the lines whose own text (or a module-level name they read) changed: their conditions
    # inside the line must go both ways too (btbuild/sim/probes.py); the readers of a
    # changed value added by ``_flow`` only have to run, and their line branches both ways
    old_direct: dict[Path, frozenset[int]] = field(default_factory=dict)
    new_direct: dict[Path, frozenset[int]] = field(default_factory=dict)
    # lines of unchanged callees reading what a changed statement passed them: they only have
    # to run (their branches going both ways would ask for inputs the callers never pass)
    old_run: dict[Path, frozenset[int]] = field(default_factory=dict)
    new_run: dict[Path, frozenset[int]] = field(default_factory=dict)
    # range-selecting constants of one version that the other lacks (constants.py): reasons
    constants: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return (
            not any(self.old_lines.values())
            and not any(self.new_lines.values())
            and not self.constants
        )

    def files(self, version: str) -> tuple[Path, ...]:
        lines = self.new_lines if version == "new" else self.old_lines
        return tuple(path for path, found in lines.items() if found)


def _header(node: ast.AST) -> str:
    shallow = copy.copy(node)
    for name in _BODIES:
        if hasattr(shallow, name):
            setattr(shallow, name, [])
    return ast.dump(shallow, include_attributes=False)


def _loads(node: ast.AST) -> frozenset[str]:
    names: set[str] = set()
    parts = [node] if not hasattr(node, "body") else _header_parts(node)
    for part in parts:
        for sub in ast.walk(part):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                names.add(sub.id)
            elif isinstance(sub, ast.Attribute):
                names.add(sub.attr)
    return frozenset(names)


def _header_parts(node: ast.AST) -> list[ast.AST]:
    return [
        value
        for name, value in ast.iter_fields(node)
        if name not in _BODIES and isinstance(value, ast.AST)
    ] + [
        item
        for name, value in ast.iter_fields(node)
        if name not in _BODIES and isinstance(value, list)
        for item in value
        if isinstance(item, ast.AST)
    ]


def _binds(node: ast.AST) -> frozenset[str]:
    names: set[str] = set()
    if isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
        names.add(node.name)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    else:
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    names.add(sub.id)
                elif isinstance(sub, ast.Subscript | ast.Attribute):
                    base = sub.value
                    while isinstance(base, ast.Subscript | ast.Attribute):
                        base = base.value
                    if isinstance(base, ast.Name):
                        names.add(base.id)  # TABLE["x"] = ... changes TABLE
    return frozenset(names)


_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_MUTATING = (ast.Expr, ast.Delete, ast.If, ast.For, ast.While, ast.With, ast.Try, ast.Match)


def _mutates(node: ast.AST) -> frozenset[str]:
    """The names whose objects a statement may change in place: the names a call, ``del`` or
    a compound statement's header reads (``VIP.update({"u000500"})``, ``del TABLE["x"]``,
    ``X = register(Y)``); builtins excepted. At module or class level, a changed statement
    that mutates ``VIP`` changes what every statement reading ``VIP`` computes."""
    calls = isinstance(node, _MUTATING) or any(
        isinstance(sub, ast.Call) for part in _header_parts(node) for sub in ast.walk(part)
    )
    if not calls or isinstance(node, (*_FUNCTIONS, ast.ClassDef, ast.Import, ast.ImportFrom)):
        return frozenset()
    parts = [node] if not hasattr(node, "body") else _header_parts(node)
    return frozenset(
        sub.id
        for part in parts
        for sub in ast.walk(part)
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id not in _BUILTINS
    )


class _Cutter:
    """Cuts one normalized module into units (see the module docstring)."""

    def __init__(self) -> None:
        self.units: dict[str, _Unit] = {}

    def cut(self, tree: ast.Module) -> dict[str, _Unit]:
        self.units["<module>"] = _Unit("module")
        self._body(tree.body, "<module>", "")
        return self.units

    def _body(self, statements: Iterable[ast.AST], unit: str, prefix: str, loop: int = -1) -> None:
        items = self.units[unit].items
        for node in statements:
            line = getattr(node, "lineno", 0)
            item = _Item(_header(node), line, _loads(node), _binds(node), _mutates(node), loop)
            item.table = any(
                is_table(sub) for part in _header_parts(node) for sub in ast.walk(part)
            )
            item.assign = is_attribute(node)
            item.consts = found(node, [node] if not hasattr(node, "body") else _header_parts(node))
            items.append(item)
            if isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
                name = f"{prefix}{node.name}"
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                bases = (
                    frozenset(_loads(ast.Tuple(node.bases, ast.Load())))
                    if isinstance(node, ast.ClassDef)
                    else frozenset()
                )
                registered = registers(node)
                self.units[name] = _Unit(
                    kind,
                    [_Item(_header(node), 0)],
                    registered,
                    bases,
                    _params(node),
                    _header_loads(node),
                )
                self._body(node.body, name, f"{name}.")
                continue
            inner = len(items) - 1 if loop < 0 and isinstance(node, _LOOPS) else loop
            for field_name in _BODIES:
                children = getattr(node, field_name, None)
                if isinstance(children, list) and children:
                    items.append(_Item(f"<{field_name}>", 0))
                    self._body(children, unit, prefix, inner)
            if hasattr(node, "body"):
                items.append(_Item("<end>", 0))


def _params(node: ast.AST) -> frozenset[str]:
    args = getattr(node, "args", None)
    if not isinstance(args, ast.arguments):
        return frozenset()
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return frozenset(arg.arg for arg in every if arg is not None)


def _header_loads(node: ast.AST) -> frozenset[str]:
    """The names a ``def``'s defaults and decorators read: evaluated once, at definition."""
    args = getattr(node, "args", None)
    parts = list(getattr(node, "decorator_list", []))
    if isinstance(args, ast.arguments):
        parts += [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
    return frozenset().union(*(_loads(part) for part in parts))


def _cut(path: Path | None, shown: str) -> dict[str, _Unit]:
    if path is None or not path.is_file():
        return {}
    tree = normalized_tree(decode_source(path.read_bytes(), path=shown), path=shown)
    return _Cutter().cut(tree)


def _diff(old: list[_Item], new: list[_Item]) -> tuple[set[int], set[int]]:
    """Indices of the changed items of ``old`` and of ``new``."""
    matcher = difflib.SequenceMatcher(
        None, [i.key for i in old], [i.key for i in new], autojunk=False
    )
    gone: set[int] = set()
    added: set[int] = set()
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag != "equal":
            gone.update(range(a0, a1))
            added.update(range(b0, b1))
    return gone, added


@dataclass
class _Side:
    version: VersionFiles
    units: dict[tuple[str, str], _Unit]  # (shown path, qualname) -> unit
    paths: dict[str, Path]
    changed: dict[tuple[str, str], set[int]] = field(default_factory=dict)
    flowed: dict[tuple[str, str], set[int]] = field(default_factory=dict)  # + their readers
    called: dict[tuple[str, str], set[int]] = field(default_factory=dict)  # callees' readers


def _side(version: VersionFiles) -> _Side:
    units: dict[tuple[str, str], _Unit] = {}
    paths: dict[str, Path] = {}
    for path in version.files:
        shown = version.shown(path)
        paths[shown] = path
        for name, unit in _cut(path, shown).items():
            units[(shown, name)] = unit
    return _Side(version, units, paths)


def _reachable(side: _Side) -> set[tuple[str, str]]:
    entry_shown = side.version.shown(side.version.entry)
    return reachable(side.units, entry_shown, side.version.entry_attr.split(".")[0])


def code_change(old: VersionFiles, new: VersionFiles) -> CodeChange:
    """The statements of ``old`` and ``new`` a simulation must run (see the module docstring)."""
    sides = (_side(old), _side(new))
    names: set[str] = set()  # module/class-level names whose binding changed
    for key in set(sides[0].units) | set(sides[1].units):
        units = [side.units.get(key) for side in sides]
        items = [unit.items if unit else [] for unit in units]
        gone, added = _diff(items[0], items[1])
        for side, changed in zip(sides, (gone, added), strict=True):
            if key in side.units:
                unit = side.units[key]
                side.changed[key] = changed
                side.flowed[key] = changed
                if unit.kind != "function":
                    for index in changed:
                        names.update(unit.items[index].binds | unit.items[index].mutates)
    for side in sides:  # a default reading a changed name (``rate=RATE``): the def changed
        for key, unit in side.units.items():
            if unit.kind == "function" and not names.isdisjoint(unit.header):
                side.changed[key] = side.changed.get(key, set()) | {0}
                side.flowed[key] = side.changed[key]
        flow_calls(side)
    old_side, new_side = sides
    lines = [_required(side, names, side.flowed) for side in sides]
    run = [_required(side, set(), side.called) for side in sides]
    return CodeChange(
        old,
        new,
        old_lines=_merge(lines[0], run[0]),
        new_lines=_merge(lines[1], run[1]),
        old_direct=_required(old_side, names, old_side.changed, tables=True),
        new_direct=_required(new_side, names, new_side.changed, tables=True),
        old_run=_only(run[0], lines[0]),
        new_run=_only(run[1], lines[1]),
        constants=changed_constants(old_side, new_side, _reachable),
    )


def _merge(
    first: dict[Path, frozenset[int]], second: dict[Path, frozenset[int]]
) -> dict[Path, frozenset[int]]:
    return {path: first.get(path, frozenset()) | second.get(path, frozenset()) for path in first}


def _only(
    run: dict[Path, frozenset[int]], required: dict[Path, frozenset[int]]
) -> dict[Path, frozenset[int]]:
    return {path: found - required.get(path, frozenset()) for path, found in run.items()}


def _required(
    side: _Side, names: set[str], changes: dict[tuple[str, str], set[int]], tables: bool = False
) -> dict[Path, frozenset[int]]:
    """The lines of the reachable functions that changed (or read a changed name); with
    ``tables``, also the changed module and class-level statements holding a table (a dict
    display) or binding a class attribute that a reachable function reads: each of its
    entries, or the attribute, must be read."""
    lines: dict[Path, set[int]] = {path: set() for path in side.paths.values()}
    reads: set[str] = set()
    for key in _reachable(side):
        unit = side.units[key]
        changed = changes.get(key, set())
        whole = 0 in changed  # the def line itself changed: defaults, decorators, name
        for index, item in enumerate(unit.items):
            reads |= item.loads
            if item.line and (whole or index in changed or not names.isdisjoint(item.loads)):
                lines[side.paths[key[0]]].add(item.line)
    for key, unit in side.units.items() if tables else ():
        for index in changes.get(key, set()) if unit.kind != "function" else ():
            item = unit.items[index]
            probed = item.table or (item.assign and unit.kind == "class")
            if probed and item.line and not item.binds.isdisjoint(reads):
                lines[side.paths[key[0]]].add(item.line)
    return {path: frozenset(found) for path, found in lines.items()}


__all__ = ["CodeChange", "VersionFiles", "code_change", "forget"]
