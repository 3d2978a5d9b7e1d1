"""Normalize calculation source so that only behaviour reaches the code hash.

The canonical form of a module is produced in three steps:

1. parse with libcst and resolve scopes (``ScopeProvider``);
2. rename every *function-local* binding to ``_L0``, ``_L1``, ... in order of first
   appearance, so a pure local rename keeps the hash;
3. re-parse the result with :mod:`ast`, drop docstrings and print it back with
   :func:`ast.unparse`. The ``ast`` round trip is what erases comments, blank lines, quote
   style, redundant parentheses, trailing commas and line wrapping.

What is renamed: variables bound inside a function (assignments, loop and ``with`` targets,
``except ... as`` names, walrus targets outside comprehensions), comprehension and generator
variables anywhere, and the locals of nested closures; a closure's free variable is renamed
together with the binding it points at. What is never renamed: parameters (callers may pass
them by keyword), globals and names declared ``global``/``nonlocal``, attributes, keyword
arguments, imports, and nested ``def``/``class`` names (their ``__name__`` is observable).
A function that calls ``locals()``, ``vars()``, ``eval()`` or ``exec()`` keeps all its names,
and so do the functions around it, because renaming would be visible to that code.

Names the user wrote that already start with ``_L`` are escaped to ``_L_<name>`` in the
canonical form, so a user's global ``_L0`` can never be confused with a renamed local.
"""

from __future__ import annotations

import ast

import libcst as cst
from libcst.metadata import (
    Assignment,
    ComprehensionScope,
    FunctionScope,
    MetadataWrapper,
    Scope,
    ScopeProvider,
)

from btbuild.errors import WorkspaceError
from btbuild.hashing.digest import hash_text

LOCAL_PREFIX = "_L"
_DYNAMIC_NAMES = frozenset({"locals", "vars", "eval", "exec"})
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
_DOCSTRING_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def parse_source(source: str, *, path: str = "<string>") -> cst.Module:
    """Parse ``source`` with libcst; a syntax error names ``path`` and the line."""
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        message, line = error.message, error.raw_line
    except RecursionError:
        raise WorkspaceError(
            "cannot hash this file, its expressions are nested too deeply", path=path
        ) from None
    try:  # CPython's own message and line are more precise than libcst's
        ast.parse(source, filename=path)
    except SyntaxError as error:
        message, line = error.msg, error.lineno or line
    raise WorkspaceError(
        f"cannot hash this file, it is not valid Python: {message}", path=path, line=line
    )


def canonical_source(module: cst.Module, *, path: str = "<string>") -> str:
    """The canonical text of an already parsed module (see the module docstring)."""
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    renamed = wrapper.module.visit(_Renamer(_local_bindings(wrapper)))
    try:
        tree = ast.parse(renamed.code, filename=path)
    except SyntaxError as error:  # libcst accepted something CPython rejects
        raise WorkspaceError(
            f"cannot hash this file, it is not valid Python: {error.msg}",
            path=path,
            line=error.lineno,
        ) from None
    _strip_docstrings(tree)
    return ast.unparse(tree)


def normalize_source(source: str, *, path: str = "<string>") -> str:
    """The canonical form of ``source``: equal for sources that differ only cosmetically."""
    return canonical_source(parse_source(source, path=path), path=path)


def code_hash(source: str, *, path: str = "<string>") -> str:
    """The xxh3_128 hex digest of :func:`normalize_source`."""
    return hash_text(normalize_source(source, path=path))


BindingKey = tuple[int, str]  # (id of the binding scope, name)


def _local_bindings(wrapper: MetadataWrapper) -> dict[cst.Name, BindingKey]:
    """Map every Name node of a renamable local binding to that binding's key."""
    scopes = {scope for scope in wrapper.resolve(ScopeProvider).values() if scope is not None}
    frozen_names = _never_renamed_names(wrapper.module)
    dynamic = _dynamic_scopes(scopes)
    names: dict[cst.Name, BindingKey] = {}
    for scope in scopes:
        if not isinstance(scope, (FunctionScope, ComprehensionScope)) or scope in dynamic:
            continue
        by_name: dict[str, list[cst.CSTNode]] = {}
        for assignment in scope.assignments:
            if assignment.name in frozen_names:
                continue
            nodes = by_name.setdefault(assignment.name, [])
            if isinstance(assignment, Assignment):
                nodes.append(assignment.node)
            else:  # not a binding written in this file: never rename
                nodes.append(wrapper.module)
            nodes.extend(reference.node for reference in assignment.references)
        for name, nodes in by_name.items():
            if _all_names(nodes):
                key = (id(scope), name)
                for node in nodes:
                    names[node] = key  # type: ignore[index]  # _all_names checked each is a Name
    return names


def _all_names(nodes: list[cst.CSTNode]) -> bool:
    """A binding is renamable only if each occurrence is a plain Name.

    Parameters (``Param``), imports, ``def``/``class`` statements and string annotations
    show up here as other node types; those bindings keep their names.
    """
    return all(type(node) is cst.Name for node in nodes)


def _dynamic_scopes(scopes: set[Scope]) -> set[Scope]:
    """Scopes that may read their own locals by name, plus every scope around them."""
    dynamic: set[Scope] = set()
    for scope in scopes:
        if any(
            access.node.value in _DYNAMIC_NAMES
            for access in scope.accesses
            if isinstance(access.node, cst.Name)
        ):
            current: Scope | None = scope
            while current is not None and current not in dynamic and current.parent is not current:
                dynamic.add(current)
                current = current.parent
    return dynamic


def _never_renamed_names(module: cst.Module) -> frozenset[str]:
    """Names declared ``nonlocal`` anywhere, and walrus targets inside comprehensions.

    Both bind in an enclosing scope that libcst does not always attribute correctly, so
    they keep their names everywhere: safe, and rare in calculation code.
    """
    collector = _FrozenNameCollector()
    module.visit(collector)
    return frozenset(collector.names)


class _FrozenNameCollector(cst.CSTVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()
        self._comprehension_depth = 0

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        self.names.update(item.name.value for item in node.names)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        if self._comprehension_depth and isinstance(node.target, cst.Name):
            self.names.add(node.target.value)

    def visit_ListComp(self, node: cst.ListComp) -> None:
        self._comprehension_depth += 1

    def leave_ListComp(self, original_node: cst.ListComp) -> None:
        self._comprehension_depth -= 1

    def visit_SetComp(self, node: cst.SetComp) -> None:
        self._comprehension_depth += 1

    def leave_SetComp(self, original_node: cst.SetComp) -> None:
        self._comprehension_depth -= 1

    def visit_DictComp(self, node: cst.DictComp) -> None:
        self._comprehension_depth += 1

    def leave_DictComp(self, original_node: cst.DictComp) -> None:
        self._comprehension_depth -= 1

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self._comprehension_depth += 1

    def leave_GeneratorExp(self, original_node: cst.GeneratorExp) -> None:
        self._comprehension_depth -= 1


class _Renamer(cst.CSTTransformer):
    """Give local bindings canonical names in document order; escape user ``_L`` names."""

    def __init__(self, bindings: dict[cst.Name, BindingKey]) -> None:
        self._bindings = bindings
        self._canonical: dict[BindingKey, str] = {}

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        key = self._bindings.get(original_node)
        if key is not None:
            name = self._canonical.get(key)
            if name is None:
                name = self._canonical[key] = f"{LOCAL_PREFIX}{len(self._canonical)}"
            return updated_node.with_changes(value=name)
        if original_node.value.startswith(LOCAL_PREFIX):
            return updated_node.with_changes(value=f"{LOCAL_PREFIX}_{original_node.value}")
        return updated_node


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
