"""What calculation code reads at run time besides its code: found in the syntax tree.

The code hash covers normalized code only, so anything else the code reads must become an
input of its own or it goes stale silently (a build skipping every cell, exit 0):

* **environment variables** (``os.environ["RATE"]``, ``os.environ.get("RATE")``,
  ``os.getenv("RATE")``, ``"RATE" in os.environ``, ``environ[...]`` after ``from os import
  environ``): the literal names are inputs (``env:RATE``); a name that is computed
  (``os.environ[name]``), or the environment used as a whole (``dict(os.environ)``, iterating
  it, passing it on) is ``*``: the whole environment is an input (btbuild/hashing/runtime.py);
* **docstrings** (``__doc__``, ``inspect.getdoc``, ``help``, ``pydoc``): the normalizer drops
  them from the code hash, so the docstrings of the target's files become inputs;
* **source text** (``inspect.getsource`` and its relatives, ``linecache``, tracebacks and line
  numbers, ``__code__``, ``open(__file__)``): comments and formatting change what such code
  computes, so the target's files' raw bytes become inputs;
* **dynamic imports**: ``importlib.import_module("m")`` and ``__import__("m")`` with a literal
  name are imports like ``import m``; a computed name, ``sys.path`` changed by the code, or a
  module loaded from a path (``runpy``, ``spec_from_file_location``, ``SourceFileLoader``,
  ``site.addsitedir``, ``pkgutil``) may import any module of the workspace (``any_module``
  says why).

The scan is syntactic and conservative: a false hit costs a needless re-run, never a stale
result. Files without any trigger word skip the walk (one regular-expression search).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

_TRIGGERS = re.compile(
    r"environ|getenv|__doc__|getdoc|\bhelp\b|pydoc|getsource|findsource|getcomments|linecache"
    r"|__file__|__code__|lineno|format_exc|format_exception|format_tb|extract_tb|format_stack"
    r"|extract_stack|print_exc|print_stack|getframeinfo|get_source|import_module|__import__"
    r"|sys\.path|run_path|run_module|spec_from_file_location|load_source|SourceFileLoader|addsitedir"
    r"|iter_modules|walk_packages|\btoday\b|\bnow\b|utcnow|\btime\b|time_ns|localtime|gmtime|ctime"
)
_ENVIRON = frozenset({"environ", "environb"})
_GETENV = frozenset({"getenv", "getenvb"})
_BY_NAME = frozenset({"get", "setdefault", "pop", "__getitem__", "__contains__"})
_DOCS = frozenset({"__doc__", "getdoc", "pydoc"})
_SOURCE = frozenset(
    {
        "getsource",
        "getsourcelines",
        "findsource",
        "getcomments",
        "linecache",
        "__code__",
        "co_firstlineno",
        "f_lineno",
        "tb_lineno",
        "format_exc",
        "format_exception",
        "format_tb",
        "extract_tb",
        "format_stack",
        "extract_stack",
        "print_exc",
        "print_stack",
        "getframeinfo",
        "get_source",
    }
)
# ``date.today()``, ``datetime.now()``, ``time.time()``: the clock, when called
_CLOCK_CALLS = frozenset({"today", "now", "utcnow", "time_ns", "localtime", "gmtime", "ctime"})
_LOADERS = frozenset(
    {
        "run_path",
        "run_module",
        "spec_from_file_location",
        "load_source",
        "SourceFileLoader",
        "addsitedir",
        "iter_modules",
        "walk_packages",
    }
)
# ``Path(__file__).parent``, ``os.path.dirname(__file__)``: the file's folder or name, not its text
_FOLDER_ATTRIBUTES = frozenset(
    {"parent", "parents", "name", "stem", "suffix", "with_name", "with_suffix", "with_stem"}
)
_FOLDER_CALLS = frozenset({"dirname", "basename", "split", "splitext"})
_WRAPPERS = frozenset({"Path", "PurePath", "PosixPath", "abspath", "realpath", "normpath", "str"})
_CHAINED = frozenset({"resolve", "absolute", "expanduser"})
_SYS_PATH_CHANGES = frozenset({"append", "insert", "extend", "__setitem__", "__iadd__"})


@dataclass
class Reads:
    """What one file reads at run time besides its code (see the module docstring)."""

    env: set[str] = field(default_factory=set)  # variable names; "*": the whole environment
    docs: bool = False
    source: bool = False
    clock: bool = False  # reads the date or time of day
    any_module: str = ""  # why any workspace module may be imported ("" if none)
    # (top-level statement index, module, level) of imports by literal name
    imports: list[tuple[int, str, int]] = field(default_factory=list)


def scan_reads(tree: ast.Module, source: str) -> Reads:
    """The run-time reads of a parsed module (call before docstrings are dropped)."""
    reads = Reads()
    if _TRIGGERS.search(source) is None:
        return reads
    for index, statement in enumerate(tree.body):
        parents: dict[int, ast.AST] = {}
        for node in ast.walk(statement):
            for child in ast.iter_child_nodes(node):
                parents[id(child)] = node
        for node in ast.walk(statement):
            name = _name_of(node)
            if name is not None:
                _classify(node, name, parents, reads)
            if isinstance(node, ast.Call):
                _dynamic_import(node, index, reads)
    return reads


def _name_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.alias):  # ``import linecache``, ``from os import environ``
        return node.name.split(".")[-1]
    return None


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _classify(node: ast.AST, name: str, parents: dict[int, ast.AST], reads: Reads) -> None:
    parent = parents.get(id(node))
    if name in _ENVIRON and not isinstance(node, ast.alias):
        reads.env.add(_environ_use(node, parent, parents))
    elif name in _GETENV and not isinstance(node, ast.alias):
        call = parent if isinstance(parent, ast.Call) and parent.func is node else None
        reads.env.add((_literal(call.args[0]) if call and call.args else None) or "*")
    elif name in _DOCS or (name == "help" and isinstance(node, ast.Name)):
        reads.docs = True
    elif name in _SOURCE:
        reads.source = True
    elif name == "__file__" and isinstance(node, ast.Name):
        reads.source = reads.source or not _folder_only(node, parents)
    elif _reads_clock(node, name, parent):
        reads.clock = True
    elif name in _LOADERS:
        reads.any_module = reads.any_module or f"loads modules dynamically ({name})"
    elif name == "path" and isinstance(node, ast.Attribute) and _sys_path_changed(node, parent):
        reads.any_module = reads.any_module or "extends sys.path"


def _reads_clock(node: ast.AST, name: str, parent: ast.AST | None) -> bool:
    """``date.today()``, ``datetime.now()``, ``time.time()``, ``time()`` after ``from time
    import time``: a call of the clock (``time.localtime(t)`` with an argument is not)."""
    if not (isinstance(parent, ast.Call) and parent.func is node):
        return False
    if name in _CLOCK_CALLS:
        return not (name in ("localtime", "gmtime", "ctime") and parent.args)
    return name == "time" and (
        isinstance(node, ast.Name)
        or isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "time"
    )


def _environ_use(node: ast.AST, parent: ast.AST | None, parents: dict[int, ast.AST]) -> str:
    """The variable ``os.environ`` is read for here, or ``*`` for a computed name / all."""
    if isinstance(parent, ast.Subscript) and parent.value is node:
        return _literal(parent.slice) or "*"
    if isinstance(parent, ast.Attribute) and parent.value is node and parent.attr in _BY_NAME:
        call = parents.get(id(parent))
        if isinstance(call, ast.Call) and call.func is parent and call.args:
            return _literal(call.args[0]) or "*"
        return "*"
    if (
        isinstance(parent, ast.Compare)
        and len(parent.ops) == 1
        and isinstance(parent.ops[0], (ast.In, ast.NotIn))
        and parent.comparators[0] is node
    ):
        return _literal(parent.left) or "*"
    return "*"


def _folder_only(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """Whether ``__file__`` is used only for its folder or name (not to read the file)."""
    while True:
        parent = parents.get(id(node))
        if isinstance(parent, ast.Call) and node in parent.args:
            callee = _name_of(parent.func)
            if callee in _FOLDER_CALLS:
                return True
            if callee not in _WRAPPERS:
                return False
            node = parent
        elif isinstance(parent, ast.Attribute) and parent.value is node:
            if parent.attr in _FOLDER_ATTRIBUTES:
                return True
            call = parents.get(id(parent))
            if parent.attr not in _CHAINED or not isinstance(call, ast.Call):
                return False
            node = call
        else:
            return False


def _sys_path_changed(node: ast.Attribute, parent: ast.AST | None) -> bool:
    """``sys.path.append(...)``, ``sys.path[:0] = ...``, ``sys.path += ...``, ``sys.path = ...``."""
    if not (isinstance(node.value, ast.Name) and node.value.id == "sys"):
        return False
    if isinstance(node.ctx, ast.Store):
        return True
    if isinstance(parent, ast.Attribute):
        return parent.attr in _SYS_PATH_CHANGES
    if isinstance(parent, ast.Subscript):
        return isinstance(parent.ctx, ast.Store)
    return isinstance(parent, ast.AugAssign)


def _dynamic_import(call: ast.Call, index: int, reads: Reads) -> None:
    """``importlib.import_module("m")`` / ``__import__("m")``: an import; else any module."""
    callee = _name_of(call.func)
    if callee not in ("import_module", "__import__"):
        return
    name = _literal(call.args[0]) if call.args else None
    if name is None:
        reads.any_module = reads.any_module or f"{callee} with a computed name"
        return
    level = len(name) - len(name.lstrip("."))
    if level and callee == "__import__" or not name.strip("."):
        reads.any_module = reads.any_module or f"{callee} of a relative name"
        return
    reads.imports.append((index, name[level:], level))
