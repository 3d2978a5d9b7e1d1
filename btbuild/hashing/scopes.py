"""The one pass over a module's syntax tree behind :mod:`btbuild.hashing.normalize`: scopes,
bindings and name occurrences (which locals can be renamed canonically), imports, and what
each top-level statement defines, reads and runs at import time (:class:`StatementInfo`).
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

from btbuild.hashing.imports import ImportRecord

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
# Frames' locals read by name (``sys._getframe().f_locals``, ``inspect.currentframe()``, a
# traceback's frames): any function of the module may be the frame, so none is renamed.
_FRAME_ATTRIBUTES = frozenset(
    {"f_locals", "_getframe", "currentframe", "getouterframes", "getargvalues", "tb_frame"}
)
_BUILTINS = frozenset(dir(builtins))
_BUILTIN_CLASSES = frozenset(
    name for name, value in vars(builtins).items() if isinstance(value, type) and name != "type"
)
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def _path_like(text: str) -> bool:
    """Whether a string literal may name a file (``"rates.json"``, ``"data/bands.csv"``)."""
    return (
        0 < len(text) <= 255
        and ("." in text or "/" in text)
        and not any(c in text for c in "\n\r\x00{}*?<>|%")
    )


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


class Analyzer(ast.NodeVisitor):
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
        self.paths: set[str] = set()  # string literals that may name a data file
        self.frames = False  # reads frames' locals by name: no local is renamed

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

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and _path_like(node.value):
            self.paths.add(node.value)

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
        if node.attr in _FRAME_ATTRIBUTES:
            self.frames = True
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
            if self.frames:
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
