"""Normalize calculation source so that only behaviour reaches the code hash.

Everything runs on the standard library's :mod:`ast` (one parse, one scope pass, one
``ast.unparse`` per top-level statement); that is about ten times faster than the libcst
``ScopeProvider`` pipeline it replaced, with the same canonical form:

1. parse with :func:`ast.parse`, which already drops comments, blank lines, quote style,
   redundant parentheses, trailing commas and line wrapping; drop module, class and
   function docstrings (a body that was only a docstring becomes ``pass``);
2. resolve scopes with Python's own rules (function, lambda, class and comprehension
   scopes, ``global``/``nonlocal``, class bodies invisible to nested functions, the first
   iterable of a comprehension evaluated outside it) and rename every *function-local*
   binding to ``_L0``, ``_L1``, ... in order of first appearance; numbering restarts at
   every top-level statement, so one function's locals never shift another's;
3. print every top-level statement with :func:`ast.unparse` and hash it on its own.

What is renamed: variables bound inside a function (assignments, loop and ``with`` targets,
``except ... as`` names, walrus targets outside comprehensions, ``del`` targets),
comprehension and generator variables anywhere, and the locals of nested closures; a
closure's free variable is renamed together with the binding it points at. What is never
renamed: parameters (callers may pass them by keyword), globals and names declared
``global``/``nonlocal``, class-body names (attributes), attributes, keyword arguments,
imports, ``match`` captures, and nested ``def``/``class`` names (their ``__name__`` is
observable). A function that calls ``locals()``, ``vars()``, ``dir()``, ``eval()`` or
``exec()`` keeps all its names, and so do the functions around it.

Names the user wrote that already start with ``_L`` are escaped to ``_L_<name>`` in the
canonical form, so a user's global ``_L0`` can never be confused with a renamed local.

The same pass records, for every top-level statement, the module-level names it binds and
the global names it reads: :meth:`btbuild.hashing.facts.FileFacts.entry_code_hash` uses them
to hash only what one entry needs.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field
from typing import Any

from btbuild.errors import WorkspaceError
from btbuild.hashing.digest import hash_json, hash_text
from btbuild.hashing.imports import ImportRecord

LOCAL_PREFIX = "_L"
# Calls that can read a function's locals by name: such a function keeps its names.
_DYNAMIC_LOCALS = frozenset({"locals", "vars", "dir", "eval", "exec"})
# Names and attributes that can reach module globals by name: per-entry hashing is unsafe,
# the whole module is hashed instead.
_DYNAMIC_GLOBALS = frozenset(
    {"globals", "locals", "vars", "eval", "exec", "__import__", "__builtins__", "import_module"}
)
_DYNAMIC_ATTRIBUTES = frozenset(
    {"modules", "import_module", "f_globals", "f_locals", "__globals__"}
)
_BUILTINS = frozenset(dir(builtins))
_BUILTIN_CLASSES = frozenset(
    name for name, value in vars(builtins).items() if isinstance(value, type) and name != "type"
)
_DOCSTRING_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


@dataclass
class StatementInfo:
    """What one top-level statement binds at module level and which globals it reads."""

    digest: str = ""
    defines: set[str] = field(default_factory=set)
    refs: set[str] = field(default_factory=set)
    always: bool = False  # not a pure definition: part of every entry's hash
    effectful: bool = False  # a definition that runs code at import time (calls, decorators, bases)
    effect_refs: set[str] = field(default_factory=set)  # globals read at import time
    modules: set[str] = field(default_factory=set)  # top-level modules an import statement binds
    # every import the statement runs (at top level or inside its functions): (module, level,
    # imported name, "" for the module object itself); what definition-level layers follow
    imports: list[tuple[str, int, str]] = field(default_factory=list)


@dataclass
class ModuleAnalysis:
    """The result of :func:`analyze_module`."""

    statements: list[StatementInfo]
    texts: list[str]  # canonical text of each top-level statement
    imports: tuple[ImportRecord, ...]
    dynamic: bool  # reaches module globals by name: only the whole-module hash is safe

    @property
    def canonical(self) -> str:
        return "\n".join(self.texts)

    @property
    def code_hash(self) -> str:
        return module_hash([statement.digest for statement in self.statements])


def module_hash(statement_digests: list[str]) -> str:
    """The code hash of a sequence of top-level statements (the whole module, or an entry's slice)."""
    return hash_json(statement_digests)


def parse_source(source: str, *, path: str = "<string>") -> ast.Module:
    """Parse ``source`` with :mod:`ast`; a syntax error names ``path`` and the line."""
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as error:
        raise WorkspaceError(
            f"cannot hash this file, it is not valid Python: {error.msg}",
            path=path,
            line=error.lineno,
        ) from None
    except ValueError as error:  # e.g. null bytes
        raise WorkspaceError(
            f"cannot hash this file, it is not valid Python: {error}", path=path
        ) from None
    except (RecursionError, MemoryError):
        raise WorkspaceError(
            "cannot hash this file, its expressions are nested too deeply", path=path
        ) from None


def analyze_module(source: str, *, path: str = "<string>") -> ModuleAnalysis:
    """Parse, normalize and hash ``source`` statement by statement; see the module docstring."""
    tree = parse_source(source, path=path)
    _strip_docstrings(tree)
    analyzer = _Analyzer()
    try:
        analyzer.run(tree)
        renames = analyzer.resolve()
        texts: list[str] = []
        for statement in tree.body:
            _rename(statement, renames)
            texts.append(ast.unparse(statement))
    except RecursionError:
        raise WorkspaceError(
            "cannot hash this file, its expressions are nested too deeply", path=path
        ) from None
    for info, text in zip(analyzer.statements, texts, strict=True):
        info.digest = hash_text(text)
    return ModuleAnalysis(
        analyzer.statements, texts, tuple(dict.fromkeys(analyzer.imports)), analyzer.dynamic
    )


def normalized_tree(source: str, *, path: str = "<string>") -> ast.Module:
    """The normalized syntax tree of ``source`` (docstrings dropped, locals renamed as in
    :func:`analyze_module`), nodes keeping their original line numbers: what
    :mod:`btbuild.sim.changes` compares statement by statement."""
    tree = parse_source(source, path=path)
    _strip_docstrings(tree)
    analyzer = _Analyzer()
    try:
        analyzer.run(tree)
        renames = analyzer.resolve()
        for statement in tree.body:
            _rename(statement, renames)
    except RecursionError:
        raise WorkspaceError(
            "cannot hash this file, its expressions are nested too deeply", path=path
        ) from None
    return tree


def normalize_source(source: str, *, path: str = "<string>") -> str:
    """The canonical form of ``source``: equal for sources that differ only cosmetically."""
    return analyze_module(source, path=path).canonical


def code_hash(source: str, *, path: str = "<string>") -> str:
    """The xxh3_128 hex digest of the whole normalized module (what a layer contributes)."""
    return analyze_module(source, path=path).code_hash


class _Scope:
    __slots__ = ("kind", "parent", "bindings", "globals", "nonlocals", "dynamic", "top")

    def __init__(self, kind: str, parent: _Scope | None, top: int) -> None:
        self.kind = kind  # "module", "class", "function" or "comprehension"
        self.parent = parent
        self.bindings: dict[str, bool] = {}  # name -> every binding site is a plain name
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()
        self.dynamic = False
        self.top = top


BindingKey = tuple[int, str]  # (id of the binding scope, name)


class _Analyzer(ast.NodeVisitor):
    """One pass: scopes, bindings, name occurrences, imports and per-statement facts."""

    def __init__(self) -> None:
        self.module = _Scope("module", None, -1)
        self.scope = self.module
        self.scopes: list[_Scope] = []
        # node, name, scope, top-level statement index, is a load, runs at import time
        self.occurrences: list[tuple[ast.AST, str, _Scope, int, bool, bool]] = []
        self.classes: dict[str, bool] = {}  # module-level class -> may run hooks when subclassed
        self.frozen: set[str] = set()
        self.imports: list[ImportRecord] = []
        self.statements: list[StatementInfo] = []
        self.statement = StatementInfo()
        self.top = -1
        self.runtime_depth = 0  # > 0 inside function bodies: not executed at import time
        self.comprehension_depth = 0
        self.dynamic = False

    # driving -----------------------------------------------------------------------------

    def run(self, tree: ast.Module) -> None:
        for index, statement in enumerate(tree.body):
            self.top = index
            self.statement = StatementInfo(always=not _is_definition(statement))
            self.statements.append(self.statement)
            self.visit(statement)

    def _push(self, kind: str) -> _Scope:
        scope = _Scope(kind, self.scope, self.top)
        self.scopes.append(scope)
        self.scope = scope
        return scope

    def _pop(self, scope: _Scope) -> None:
        assert scope.parent is not None
        self.scope = scope.parent

    def _bind(self, name: str, renamable: bool) -> None:
        scope = self.scope
        scope.bindings[name] = scope.bindings.get(name, True) and renamable
        if scope is self.module:
            self.statement.defines.add(name)

    def _visit_all(self, nodes: list[ast.expr] | list[ast.stmt] | list[ast.expr | None]) -> None:
        for node in nodes:
            if node is not None:
                self.visit(node)

    # names -------------------------------------------------------------------------------

    def visit_Name(self, node: ast.Name) -> None:
        load = isinstance(node.ctx, ast.Load)
        self.occurrences.append((node, node.id, self.scope, self.top, load, not self.runtime_depth))
        if load:
            if node.id in _DYNAMIC_LOCALS:
                self.scope.dynamic = True
            if node.id in _DYNAMIC_GLOBALS:
                self.dynamic = True
        else:
            self._bind(node.id, True)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in _DYNAMIC_ATTRIBUTES:
            self.dynamic = True
        self.visit(node.value)

    def visit_Global(self, node: ast.Global) -> None:
        self.scope.globals.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.scope.nonlocals.update(node.names)
        self.frozen.update(node.names)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        target = node.target
        if self.comprehension_depth:
            self.frozen.add(target.id)  # binds in the enclosing scope: keep the name
            scope = self.scope
            while scope.kind == "comprehension" and scope.parent is not None:
                scope = scope.parent
            saved, self.scope = self.scope, scope
            self.visit(target)
            self.scope = saved
        else:
            self.visit(target)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name is not None:
            self.occurrences.append((node, node.name, self.scope, self.top, False, False))
            self._bind(node.name, True)
        self._visit_all(node.body)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.imports.append(ImportRecord(alias.name))
            self.statement.imports.append((alias.name, 0, ""))
            if self.scope is self.module:
                self.statement.modules.add(alias.name.split(".")[0])
            self._bind(alias.asname or alias.name.split(".")[0], False)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        names = tuple(alias.name for alias in node.names)
        self.imports.append(ImportRecord(module, node.level, names))
        self.statement.imports.extend((module, node.level, name) for name in names)
        if self.scope is self.module:
            self.statement.modules.add("." if node.level else module.split(".")[0])
        if module == "__future__" or "*" in names:
            self.statement.always = True  # changes the whole module / binds unknown names
        if module == "sys" and "modules" in names:
            self.dynamic = True
        for alias in node.names:
            if alias.name != "*":
                self._bind(alias.asname or alias.name, False)

    # import-time effects -------------------------------------------------------------------

    def _effect(self) -> None:
        if not self.runtime_depth:
            self.statement.effectful = True

    def visit_Call(self, node: ast.Call) -> None:
        self._effect()
        self.generic_visit(node)

    def visit_Await(self, node: ast.Await) -> None:
        self._effect()
        self.generic_visit(node)

    # scopes --------------------------------------------------------------------------------

    def _arguments_outside(self, args: ast.arguments) -> None:
        """Defaults and annotations are evaluated in the enclosing scope."""
        self._visit_all(args.defaults)
        self._visit_all(args.kw_defaults)
        for arg in (*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg):
            if arg is not None and arg.annotation is not None:
                self.visit(arg.annotation)

    def _bind_arguments(self, args: ast.arguments) -> None:
        for arg in (*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg):
            if arg is not None:
                self._bind(arg.arg, False)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._decorators(node.decorator_list)
        self._arguments_outside(node.args)
        if node.returns is not None:
            self.visit(node.returns)
        self._bind(node.name, False)
        scope = self._push("function")
        for param in getattr(node, "type_params", ()):  # Python 3.12+
            self._bind(param.name, False)
        self._bind_arguments(node.args)
        self.runtime_depth += 1
        self._visit_all(node.body)
        self.runtime_depth -= 1
        self._pop(scope)

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._arguments_outside(node.args)
        scope = self._push("function")
        self._bind_arguments(node.args)
        self.runtime_depth += 1
        self.visit(node.body)
        self.runtime_depth -= 1
        self._pop(scope)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        hooks = bool(node.keywords) or any(
            isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            and item.name in ("__init_subclass__", "__set_name__")
            for item in node.body
        )
        hooky = [self._hooky_base(base) for base in node.bases]
        inherited = any(hooky)
        if node.keywords or inherited:
            self._effect()  # a base's __init_subclass__ or a metaclass runs
        if self.scope is self.module:
            self.classes[node.name] = hooks or inherited
        self._decorators(node.decorator_list)
        for runs_code, base in zip(hooky, node.bases, strict=True):
            self._quiet(base, quiet=not runs_code)
        for keyword in node.keywords:
            self.visit(keyword.value)
        self._bind(node.name, False)
        scope = self._push("class")
        for param in getattr(node, "type_params", ()):  # Python 3.12+
            self._bind(param.name, False)
        self._visit_all(node.body)
        self._pop(scope)

    def _quiet(self, node: ast.expr, *, quiet: bool) -> None:
        """Visit ``node``; if ``quiet``, its evaluation runs no user code at import time."""
        if quiet:
            self.runtime_depth += 1
            self.visit(node)
            self.runtime_depth -= 1
        else:
            self.visit(node)

    def _decorators(self, decorators: list[ast.expr]) -> None:
        """A decorator call runs code at import time, unless it is a builtin like ``property``."""
        for decorator in decorators:
            builtin = (
                isinstance(decorator, ast.Name)
                and decorator.id in _BUILTINS
                and decorator.id not in self.module.bindings
            )
            if not builtin:
                self._effect()
            self._quiet(decorator, quiet=builtin)

    def _hooky_base(self, base: ast.expr) -> bool:
        """Can deriving from ``base`` run code (``__init_subclass__``, a metaclass)?

        Only a builtin class or a module-level class known to have no such hook is safe.
        """
        if not isinstance(base, ast.Name):
            return True
        if base.id in self.classes:
            return self.classes[base.id]
        return base.id not in _BUILTIN_CLASSES or base.id in self.module.bindings

    def _comprehension(
        self,
        node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp,
        elements: list[ast.expr],
    ) -> None:
        generators = node.generators
        self._effect()  # iterating runs code
        self.visit(generators[0].iter)  # evaluated in the enclosing scope
        scope = self._push("comprehension")
        self.comprehension_depth += 1
        for index, generator in enumerate(generators):
            if index:
                self.visit(generator.iter)
            self.visit(generator.target)
            self._visit_all(generator.ifs)
        self._visit_all(elements)
        self.comprehension_depth -= 1
        self._pop(scope)

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._comprehension(node, [node.elt])

    def visit_SetComp(self, node: ast.SetComp) -> None:
        self._comprehension(node, [node.elt])

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self._comprehension(node, [node.elt])

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])

    # match captures are bindings that keep their names ------------------------------------

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.pattern is not None:
            self.visit(node.pattern)
        if node.name is not None:
            self._bind(node.name, False)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name is not None:
            self._bind(node.name, False)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self.generic_visit(node)
        if node.rest is not None:
            self._bind(node.rest, False)

    # resolution ------------------------------------------------------------------------------

    def resolve(self) -> dict[int, BindingKey]:
        """Map ``id(node)`` of every renamable occurrence to its binding; fill statement facts."""
        dynamic: set[int] = set()
        for scope in self.scopes:
            if scope.dynamic:
                current: _Scope | None = scope
                while current is not None and id(current) not in dynamic:
                    dynamic.add(id(current))
                    current = current.parent
            if scope.globals:  # a function assigning a declared global binds it at module level
                self.statements[scope.top].defines.update(scope.globals)
        renames: dict[int, BindingKey] = {}
        frozen = self.frozen
        for node, name, scope, top, load, import_time in self.occurrences:
            binding = _binding_scope(scope, name)
            if binding is None or binding.kind == "class":
                # a global, a builtin, or a class-body name (read before it is bound, a
                # class body falls back to the globals): a dependency of this statement
                info = self.statements[top]
                if load:
                    info.refs.add(name)
                    if import_time:
                        info.effect_refs.add(name)
                elif binding is None and scope is not self.module:
                    info.defines.add(name)  # an assignment to a declared global
                continue
            if binding.bindings.get(name) and name not in frozen and id(binding) not in dynamic:
                renames[id(node)] = (id(binding), name)
        return renames


def _binding_scope(scope: _Scope, name: str) -> _Scope | None:
    """The scope whose binding ``name`` refers to from ``scope``; None means module/builtin."""
    if scope.kind == "module":
        return None
    if scope.kind == "class":
        if name in scope.globals:
            return None
        if name in scope.bindings and name not in scope.nonlocals:
            return scope
        current = scope.parent
    else:
        current = scope
    while current is not None:
        if current.kind == "module":
            return None  # globals (module scope or builtins)
        if current.kind != "class" or current is scope:
            if name in current.globals:
                return None
            if name in current.bindings and name not in current.nonlocals:
                return current
        current = current.parent
    return None


def _is_definition(statement: ast.stmt) -> bool:
    """Top-level statements that only bind names (included when one of the names is used)."""
    if isinstance(statement, _DEFINITIONS):
        return True
    if isinstance(statement, ast.Assign):
        return all(_plain_target(target) for target in statement.targets)
    if isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
        return isinstance(statement.target, ast.Name)
    return type(statement).__name__ == "TypeAlias"  # Python 3.12+ ``type X = ...``


def _plain_target(target: ast.expr) -> bool:
    if isinstance(target, ast.Name):
        return True
    if isinstance(target, ast.Starred):
        return _plain_target(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return all(_plain_target(element) for element in target.elts)
    return False  # attribute or subscript: mutates an object, not a definition


def _escape(name: str) -> str:
    return f"{LOCAL_PREFIX}_{name}" if name.startswith(LOCAL_PREFIX) else name


def _rename(statement: ast.stmt, renames: dict[int, BindingKey]) -> None:
    """Canonical local names in pre-order (document) order; escape user ``_L`` names."""
    canonical: dict[BindingKey, str] = {}
    stack: list[ast.AST] = [statement]
    while stack:
        # ``kind is ast.X`` narrows the node below (faster than isinstance in this per-node
        # loop); mypy cannot follow identity checks of a type, so ``node`` is typed Any
        node: Any = stack.pop()
        kind = type(node)
        if kind is ast.Name or kind is ast.ExceptHandler:
            attribute = "id" if kind is ast.Name else "name"
            value = getattr(node, attribute)
            if value is not None:
                key = renames.get(id(node))
                if key is not None:
                    name = canonical.get(key)
                    if name is None:
                        name = canonical[key] = f"{LOCAL_PREFIX}{len(canonical)}"
                    setattr(node, attribute, name)
                elif value.startswith(LOCAL_PREFIX):
                    setattr(node, attribute, _escape(value))
        elif kind is ast.arg:
            node.arg = _escape(node.arg)
        elif kind is ast.Attribute:
            node.attr = _escape(node.attr)
        elif kind is ast.keyword:
            if node.arg is not None:
                node.arg = _escape(node.arg)
        elif kind is ast.FunctionDef or kind is ast.AsyncFunctionDef or kind is ast.ClassDef:
            node.name = _escape(node.name)
        elif kind is ast.alias:
            if node.asname is not None:
                node.asname = _escape(node.asname)
            elif "." not in node.name:
                node.name = _escape(node.name)
        elif kind is ast.Global or kind is ast.Nonlocal:
            node.names = [_escape(name) for name in node.names]
        elif kind is ast.MatchAs or kind is ast.MatchStar:
            if node.name is not None:
                node.name = _escape(node.name)
        elif kind is ast.MatchMapping and node.rest is not None:
            node.rest = _escape(node.rest)
        children = list(ast.iter_child_nodes(node))
        children.reverse()
        stack.extend(children)


def _strip_docstrings(tree: ast.Module) -> None:
    """Drop module, class and function docstrings, and the ``u`` prefix of string constants."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            node.kind = None
        elif isinstance(node, _DOCSTRING_OWNERS):
            body = node.body
            first = body[0] if body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                del body[0]
                if not body and not isinstance(node, ast.Module):
                    body.append(ast.Pass())
